"""The sign-in page of the authorization endpoint (pure: returns HTML text).

A minimal, dependency-free form in Simplified Chinese and English: step one asks for the
user name and password, step two (when the user has enrolled TOTP) for the one-time code.
The original authorization request travels in hidden fields; the password never does
(step two carries only the sign-in ticket). No script, no external resources.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["SIGNIN_HEADERS", "error_page", "signin_page"]

# Never framed (clickjacking), never cached, nothing loaded from elsewhere.
SIGNIN_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}

_STYLE = (
    "body{font-family:system-ui,'PingFang SC','Microsoft YaHei',sans-serif;max-width:26rem;"
    "margin:3rem auto;padding:0 1rem;color:#222}label{display:block;margin:.8rem 0 .2rem}"
    "input[type=text],input[type=password]{width:100%;padding:.5rem;box-sizing:border-box}"
    "button{margin-top:1rem;padding:.5rem 1.2rem}.error{color:#b00020}.en{color:#555}"
)


def _page(title_zh: str, title_en: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title_zh)} / {escape(title_en)}</title><style>{_STYLE}</style>"
        f"</head><body><h1>{escape(title_zh)} <span class=\"en\">{escape(title_en)}</span></h1>"
        f"{body}</body></html>"
    )


def _hidden(params: Sequence[tuple[str, str]]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in params
    )


def signin_page(
    params: Sequence[tuple[str, str]], *, client_name: str, step: str = "password",
    ticket: str | None = None, username: str = "", error: tuple[str, str] | None = None,
    action: str = "/oauth/authorize",
) -> str:
    """The form for ``step`` ``password`` or ``totp``; ``params`` are the authorization
    request's parameters (re-posted as hidden fields); ``error`` is (zh, en)."""
    err = ""
    if error:
        err = (f'<p class="error" role="alert">{escape(error[0])}<br>'
               f'<span class="en">{escape(error[1])}</span></p>')  # fmt: skip
    app = (f"<p>应用 <strong>{escape(client_name)}</strong> 请求访问您的汇通数据。<br>"
           f'<span class="en">The application <strong>{escape(client_name)}</strong> asks to '
           "access your Huitong data.</span></p>")  # fmt: skip
    if step == "totp":
        fields = (
            f'<input type="hidden" name="step" value="totp">'
            f'<input type="hidden" name="ticket" value="{escape(ticket or "")}">'
            '<label for="code">动态口令 <span class="en">One-time code</span></label>'
            '<input type="text" id="code" name="totp" inputmode="numeric" '
            'autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus>'
        )
    else:
        fields = (
            '<input type="hidden" name="step" value="password">'
            '<label for="username">用户名 <span class="en">User name</span></label>'
            f'<input type="text" id="username" name="username" value="{escape(username)}" '
            'autocomplete="username" required autofocus>'
            '<label for="password">密码 <span class="en">Password</span></label>'
            '<input type="password" id="password" name="password" '
            'autocomplete="current-password" required>'
        )
    body = (
        f"{app}{err}<form method=\"post\" action=\"{escape(action)}\">{_hidden(params)}{fields}"
        '<button type="submit" name="action" value="signin">登录 / Sign in</button> '
        '<button type="submit" name="action" value="cancel" formnovalidate>'
        "取消 / Cancel</button></form>"
    )
    return _page("登录汇通", "Sign in to Huitong", body)


def error_page(zh: str, en: str, detail: str = "") -> str:
    """An authorization request that cannot be sent back to the client (unknown client or
    redirect URI): shown to the person instead (RFC 6749 §4.1.2.1)."""
    extra = f"<p><code>{escape(detail)}</code></p>" if detail else ""
    return _page("无法登录", "Cannot sign in",
                 f'<p class="error">{escape(zh)}<br><span class="en">{escape(en)}</span></p>'
                 f"{extra}")  # fmt: skip
