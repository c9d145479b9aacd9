"""Sign-in: TOTP required for enrolled staff (each code once), staff without TOTP when the
setting demands it, lockout, disabled users; passwords never logged, stored or returned."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from auth_helpers import (
    FAST_HASHER,
    PASSWORD,
    Client,
    StepClock,
    authorize_params,
    hidden_fields,
    pkce_pair,
    probe_app,
    query_of,
)

from huitong.access import AuthService, AuthSettings, Role
from huitong.access.totp import totp_code

SCOPE = "openid user/*.rs"


def _start(http: Client) -> list[tuple[str, str]]:
    _, challenge = pkce_pair()
    page = http.get("/oauth/authorize", params=authorize_params("portal-app", challenge, SCOPE))
    return hidden_fields(page.text)


def _password(http: Client, username: str, password: str = PASSWORD) -> Any:
    return http.post("/oauth/authorize", data={**dict(_start(http)), "username": username,
                                               "password": password, "action": "signin"})


def _totp(http: Client, page: Any, code: str) -> Any:
    fields = dict(hidden_fields(page.text))
    return http.post("/oauth/authorize", data={**fields, "totp": code, "action": "signin"})


def test_enrolled_staff_need_a_totp_code_and_each_code_works_once(
    http: Client, service: AuthService, people: dict[str, str], clock: StepClock
) -> None:
    secret = service.accounts.enrol_totp("li.wei")
    step = _password(http, "li.wei")
    assert step.status_code == 200 and 'name="totp"' in step.text
    assert "动态口令" in step.text and "One-time code" in step.text
    assert PASSWORD not in step.text  # step two carries a ticket, never the password
    wrong = _totp(http, step, "000000" if totp_code(secret, clock() // 10**6) != "000000"
                  else "111111")  # fmt: skip
    assert wrong.status_code == 401 and "动态口令错误" in wrong.text
    code = totp_code(secret, clock() // 1_000_000)
    done = _totp(http, wrong, code)
    assert done.status_code == 302 and "code" in query_of(done.headers["location"])
    again = _totp(http, _password(http, "li.wei"), code)  # the same code, a second time
    assert again.status_code == 401


def test_totp_ticket_expires(http: Client, service: AuthService, people: dict[str, str],
                             clock: StepClock) -> None:  # fmt: skip
    secret = service.accounts.enrol_totp("li.wei")
    step = _password(http, "li.wei")
    clock.advance(301)
    resp = _totp(http, step, totp_code(secret, clock() // 1_000_000))
    assert resp.status_code == 401 and "登录已过期" in resp.text


def test_staff_without_totp_refused_when_required(repo: Any, clock: StepClock) -> None:
    from auth_helpers import REDIRECT, Ids

    service = AuthService(repo, AuthSettings(staff_totp_required=True), clock=clock,
                          new_id=Ids(), password_hasher=FAST_HASHER)  # fmt: skip
    service.accounts.add("li.wei", PASSWORD, Role.CLINICIAN, organization_id="org-1")
    service.accounts.add("wang.fang", PASSWORD, Role.PATIENT, patient_ids=["p-1"])
    service.clients.add("public", client_id="portal-app", redirect_uris=[REDIRECT],
                        scopes="openid user/*.rs patient/*.rs")  # fmt: skip
    http = Client(probe_app(service))
    try:
        staff = _password(http, "li.wei")
        assert staff.status_code == 401 and "动态口令" in staff.text
        assert _password(http, "wang.fang").status_code == 302  # patients are not staff
    finally:
        http.close()


def test_wrong_password_and_unknown_user_look_the_same(
    http: Client, people: dict[str, str]
) -> None:
    wrong = _password(http, "li.wei", "not the password")
    unknown = _password(http, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in wrong.text and "user name or password is wrong" in wrong.text
    def error(text: str) -> str:
        return text[text.index('<p class="error"'):text.index("<form")]

    assert error(wrong.text) == error(unknown.text)


def test_lockout_after_repeated_failures(
    http: Client, service: AuthService, people: dict[str, str], clock: StepClock
) -> None:
    for _ in range(5):
        assert _password(http, "li.wei", "wrong password").status_code == 401
    locked = _password(http, "li.wei")  # the right password, but locked
    assert locked.status_code == 401
    clock.advance(901)
    assert _password(http, "li.wei").status_code == 302


def test_disabled_user_cannot_sign_in_refresh_or_use_tokens(
    http: Client, service: AuthService, people: dict[str, str]
) -> None:
    from auth_helpers import REDIRECT

    verifier, challenge = pkce_pair()
    page = http.get("/oauth/authorize", params=authorize_params(
        "portal-app", challenge, "offline_access patient/*.rs"))  # fmt: skip
    resp = http.post("/oauth/authorize", data={**dict(hidden_fields(page.text)),
                     "username": "wang.fang", "password": PASSWORD, "action": "signin"})
    code = query_of(resp.headers["location"])["code"]
    body = http.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                     "redirect_uri": REDIRECT, "client_id": "portal-app",
                     "code_verifier": verifier}).json()  # fmt: skip
    service.accounts.set_disabled("wang.fang")
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    assert http.get("/fhir/whoami", headers=auth).status_code == 401
    assert http.post("/oauth/token", data={"grant_type": "refresh_token", "client_id":
                     "portal-app", "refresh_token": body["refresh_token"]}).status_code == 400
    assert _password(http, "wang.fang").status_code == 401


def test_passwords_are_never_logged_stored_or_returned(
    http: Client, service: AuthService, people: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_pw = "Zebra-Lantern-9173"
    service.accounts.set_password("li.wei", secret_pw)
    ok = _password(http, "li.wei", secret_pw)
    bad = _password(http, "li.wei", secret_pw + "x")
    assert ok.status_code == 302 and bad.status_code == 401
    for resp in (ok, bad):
        assert secret_pw not in resp.text and secret_pw not in str(resp.headers)
    assert secret_pw not in caplog.text
    stored = service.repo.query("SELECT password_hash FROM auth_users WHERE username = ?",
                                ("li.wei",))  # fmt: skip
    assert stored[0][0].startswith("$argon2id$") and secret_pw not in stored[0][0]
    user = service.accounts.by_username("li.wei")
    assert user is not None and "argon2" not in repr(user) and "password" not in user.summary()
