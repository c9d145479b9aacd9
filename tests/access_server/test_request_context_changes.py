"""The change check inside a request's authentication statement (access/request_context.py,
PostgreSQL): a change committed outside the kept facts' snapshot under any one of the
checked scopes is found — exactly those scopes, whatever characters they hold (they travel
as one JSON text) — and nothing else is."""

from __future__ import annotations

from huitong.access.request_context import load_request_context
from huitong.store.repository import Repository

# scopes as the facts cache names them, plus characters a separator-joined list would
# mis-split or a quoting slip would break
SCOPES = [
    "*",
    "Organization/org-a",
    "Practitioner/pr,7",
    'label/"HIV"',
    "label/{a}",
    "label/x\\y",
    "Organization/组织-1",
]


def _snapshot(repo: Repository) -> str:
    return str(repo.query("SELECT CAST(pg_current_snapshot() AS TEXT)")[0][0])


def _change(repo: Repository, scope: str) -> None:
    with repo.transaction() as tx:
        tx.execute("INSERT INTO access_changes (scope) VALUES (?)", (scope,))


def _changed(repo: Repository, snapshot: str, scopes: list[str]) -> bool:
    found = load_request_context(repo, "no-such-jti", check=(snapshot, scopes))
    assert found.token is None
    return found.changed


def test_a_change_under_any_checked_scope_is_found(pg_repo: Repository) -> None:
    for scope in SCOPES:
        snapshot = _snapshot(pg_repo)
        assert not _changed(pg_repo, snapshot, SCOPES)
        _change(pg_repo, scope)
        assert _changed(pg_repo, snapshot, SCOPES), scope
        assert _changed(pg_repo, snapshot, [scope]), scope


def test_changes_under_other_scopes_or_already_seen_are_not(pg_repo: Repository) -> None:
    before = _snapshot(pg_repo)
    _change(pg_repo, "Organization/org-b")  # another organization
    _change(pg_repo, "Practitioner/pr")  # a prefix of a checked scope
    _change(pg_repo, "label/HIV")  # the label without the quotes
    after = _snapshot(pg_repo)
    assert not _changed(pg_repo, before, SCOPES)
    assert _changed(pg_repo, before, ["Organization/org-b"])
    _change(pg_repo, "Practitioner/pr,7")
    assert _changed(pg_repo, after, SCOPES)
    assert not _changed(pg_repo, _snapshot(pg_repo), SCOPES)  # seen by the newer snapshot
    assert not _changed(pg_repo, before, [])
