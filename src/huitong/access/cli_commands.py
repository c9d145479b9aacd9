"""``huitong user …`` and ``huitong client …``: manage accounts and registered applications.

Registered on the main command with ``main.add_command(user)`` and
``main.add_command(client)``. Every command takes ``--db`` like the others; messages are in
English and Simplified Chinese. Passwords are prompted (hidden, confirmed) or read from
``--password-stdin``, never taken as an option value (shell history, process lists); a
confidential client's secret and a TOTP secret are printed once and never again.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from huitong.access.accounts import HUMAN_ROLES
from huitong.access.clients import ClientKind
from huitong.access.totp import totp_uri
from huitong.cli_support import DB_OPTION, fail, open_database

__all__ = ["client", "user"]

_DB = DB_OPTION
_fail = fail


def _service(db_url: str | None) -> Any:
    from huitong.access.auth_settings import AuthSettings
    from huitong.access.service import AuthService

    _, repo = open_database(db_url)
    return AuthService(repo, AuthSettings.from_env())


def _run(db_url: str | None, work: Any) -> Any:
    from huitong.fhir.errors import FhirError

    service = _service(db_url)
    try:
        return work(service)
    except FhirError as exc:
        en, _, zh = exc.message.partition(" / ")
        _fail(en, zh or en)
    finally:
        service.repo.close()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    value: str = click.prompt("Password / 密码", hide_input=True, confirmation_prompt=True)
    return value


@click.group()
def user() -> None:
    """Manage user accounts / 管理用户账户."""


@user.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(sorted(str(r) for r in HUMAN_ROLES)),
              help="Role / 角色.")
@click.option("--name", default="", help="Display name / 显示名称.")
@click.option("--organization", help="Organization id / 所属机构 ID.")
@click.option("--practitioner", help="Practitioner id / 医务人员 ID.")
@click.option("--patient", "patients", multiple=True,
              help="Linked Patient id, repeatable / 关联的 Patient ID，可重复.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from stdin / 从标准输入读取密码.")
@_DB
def user_add(username: str, role: str, name: str, organization: str | None,
             practitioner: str | None, patients: tuple[str, ...], password_stdin: bool,
             db_url: str | None) -> None:  # fmt: skip
    """Create a user / 新建用户."""
    password = _read_password(password_stdin)
    created = _run(db_url, lambda s: s.accounts.add(
        username, password, role, display_name=name, organization_id=organization,
        practitioner_id=practitioner, patient_ids=patients))  # fmt: skip
    click.echo(f"Created user {created.username} ({created.role}), id {created.id}.\n"
               f"已创建用户 {created.username}（{created.role}），ID {created.id}。")  # fmt: skip


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON output / 以 JSON 输出.")
@_DB
def user_list(as_json: bool, db_url: str | None) -> None:
    """List users / 列出用户."""
    users = _run(db_url, lambda s: s.accounts.list())
    if as_json:
        click.echo(orjson.dumps([u.summary() for u in users]).decode())
        return
    if not users:
        click.echo("No users. / 没有用户。")
    for u in users:
        flags = ("disabled/已停用 " if u.disabled else "") + ("TOTP" if u.totp_enrolled else "")
        click.echo(f"{u.username}\t{u.role}\t{u.organization_id or '-'}\t{flags}".rstrip())


@user.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from stdin / 从标准输入读取密码.")
@_DB
def user_set_password(username: str, password_stdin: bool, db_url: str | None) -> None:
    """Replace a user's password / 重设用户密码."""
    password = _read_password(password_stdin)
    _run(db_url, lambda s: s.accounts.set_password(username, password))
    click.echo(f"Password changed for {username}.\n已为 {username} 更改密码。")


@user.command("enrol-totp")
@click.argument("username")
@_DB
def user_enrol_totp(username: str, db_url: str | None) -> None:
    """Give a user a new TOTP secret (shown once) / 为用户绑定新的动态口令（仅显示一次）."""
    secret = _run(db_url, lambda s: s.accounts.enrol_totp(username))
    click.echo(
        "Scan this URI (or type the secret) in an authenticator app; it is shown only once.\n"
        "请在身份验证器应用中扫描此地址（或输入密钥）；仅显示这一次。\n"
        f"{totp_uri(secret, username)}\n{secret}"
    )


@user.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Re-enable instead / 改为重新启用.")
@_DB
def user_disable(username: str, enable: bool, db_url: str | None) -> None:
    """Disable a user (their tokens stop working at once) / 停用用户（其令牌立即失效）."""
    _run(db_url, lambda s: s.accounts.set_disabled(username, not enable))
    if enable:
        click.echo(f"User {username} enabled.\n已启用用户 {username}。")
    else:
        click.echo(f"User {username} disabled.\n已停用用户 {username}。")


@click.group()
def client() -> None:
    """Manage registered applications / 管理接入应用."""


@client.command("add")
@click.argument("kind", type=click.Choice([str(k) for k in ClientKind]))
@click.option("--id", "client_id",
              help="Client id (default: generated) / 客户端 ID（默认自动生成）.")
@click.option("--name", default="", help="Display name / 显示名称.")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="Redirect URI, repeatable / 回调地址，可重复.")
@click.option("--scope", "scopes", required=True,
              help="Allowed scopes, space-separated / 允许的权限范围，空格分隔.")
@click.option("--jwks", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Public JWKS file (backend) / 公钥 JWKS 文件（后台客户端）.")
@click.option("--organization", help="Organization the client acts for / 客户端所代表的机构.")
@click.option("--introspect", is_flag=True,
              help="May introspect any token (a resource server) / 可内省任意令牌（资源服务器）.")
@_DB
def client_add(kind: str, client_id: str | None, name: str, redirect_uris: tuple[str, ...],
               scopes: str, jwks: Path | None, organization: str | None, introspect: bool,
               db_url: str | None) -> None:  # fmt: skip
    """Register a client: public, confidential or backend / 登记客户端：公开、机密或后台."""
    key_set = None
    if jwks is not None:
        try:
            key_set = orjson.loads(jwks.read_bytes())
        except orjson.JSONDecodeError:
            _fail(f"{jwks} is not JSON.", f"{jwks} 不是 JSON 文件。")
    created, secret = _run(db_url, lambda s: s.clients.add(
        kind, client_id=client_id, name=name, redirect_uris=redirect_uris, scopes=scopes,
        jwks=key_set, organization_id=organization, can_introspect=introspect))  # fmt: skip
    click.echo(f"Registered {created.kind} client {created.client_id}.\n"
               f"已登记{created.kind}客户端 {created.client_id}。")  # fmt: skip
    if secret:
        click.echo("Client secret (shown only once) / 客户端密钥（仅显示一次）:\n" + secret)


@client.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON output / 以 JSON 输出.")
@_DB
def client_list(as_json: bool, db_url: str | None) -> None:
    """List clients / 列出客户端."""
    clients = _run(db_url, lambda s: s.clients.list())
    if as_json:
        click.echo(orjson.dumps([c.summary() for c in clients]).decode())
        return
    if not clients:
        click.echo("No clients. / 没有客户端。")
    for c in clients:
        click.echo(f"{c.client_id}\t{c.kind}\t{' '.join(c.scopes)}")


@client.command("remove")
@click.argument("client_id")
@_DB
def client_remove(client_id: str, db_url: str | None) -> None:
    """Remove a client and revoke its tokens / 删除客户端并撤销其令牌."""
    _run(db_url, lambda s: s.clients.remove(client_id))
    click.echo(f"Removed client {client_id}.\n已删除客户端 {client_id}。")
