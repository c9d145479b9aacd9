"""FHIR search compiled to SQL — https://hl7.org/fhir/R4/search.html.

Pure builders: each ``*_sql`` function turns a parsed :class:`SearchQuery` (or a list of
rids) into ``(sql, params)`` for one dialect and runs nothing; the store executes them.
Placeholders are ``?`` (SQLite) or ``%s`` (psycopg); user values are always bound, never
written into the SQL text. Every resource a query returns or goes through (chain targets,
``_has`` sources, included resources) is current and not deleted.

How a search becomes SQL. Each clause is a condition on the resource row ``r``. The most
selective clause (an ``_id``, the compartment, a reference or a token value...) is written
``r.rid IN (SELECT rid FROM idx_x WHERE res_type = ? AND param = ? AND ...)`` so it drives the
query through the lookup indexes; every other clause is a correlated ``EXISTS`` probed per
candidate through the ``idx_*_rid`` indexes. A chain joins the reference rows to the target
resources that match the inner clause; ``_has`` goes the other way. A page led by ``_has``
picks its reading at run time: from the matching sources when they are few, else candidate
by candidate in rid order, stopping once the page is full (:func:`search_page_sql`). A
search of one plain clause is read from its index table alone (:func:`_index_only_matches`),
also under an access restriction that can be tested on the index rows themselves. The
choice of driver is a fixed ranking (the builders see no statistics); SQLite gets unary
``+`` and ``CROSS JOIN`` hints where its planner would otherwise scan a whole parameter.

The compartment key. Every index row carries ``patient_key``, its resource's Patient
compartment, and ``idx_token_lookup`` holds it right after the code (migration 0016), so
"the rows with this code filed under this patient" is one seek. A search that names a
patient and a code (``Observation?patient=x&code=y``, :func:`_keyed_reference`) and a
``_has`` on Patient whose sources are found by code (:func:`_keyed_probe`,
:func:`_keyed_matches`) use it instead of reading every resource that refers to the
patient. A resource filed under one patient may still refer to another (a golden record's
links, a Group's members): the reference rows that point at a Patient other than their own
compartment are the partial index ``idx_reference_cross``, and the compartment seek and that
index together find every match, so results are those of the plain form.

Matching, per parameter type (https://hl7.org/fhir/R4/search.html#ptypes):

- string: starts-with on the normalised value (``:exact`` exact, ``:contains`` substring);
- token: ``code``, ``system|code``, ``|code`` (no system), ``system|`` (any code);
  ``:text`` matches the normalised display/text at its start or at the start of a word;
  ``:not`` means no row with that value; ``:of-type`` matches the rows the indexer writes as
  ``"<param>:of-type"``, ``system`` = the type's system, ``code`` = ``"<type code>|<value>"``;
- reference: ``Type/id``, ``id`` (any target type; ``:[type]`` restricts it), absolute URL or
  ``urn:`` (the stored ``url``), canonical ``url|version`` (version ignored), ``:identifier``
  (token rows ``"<param>:identifier"``);
- date (and ``_lastUpdated``): the search value and the stored value are both ranges
  [lo, hi]; prefixes follow the range column of https://hl7.org/fhir/R4/search.html#prefix:
  ``eq`` search range contains target, ``ne`` it does not, ``gt`` target.hi > search.hi,
  ``lt`` target.lo < search.lo, ``ge``/``le`` those or ``eq``, ``sa`` target.lo > search.hi,
  ``eb`` target.hi < search.lo, ``ap`` the search range widened on each side by 10% of its
  width, at least one day, overlaps the target (no clock is read: builders stay pure);
- number and quantity: the search value has its implicit precision (``100`` is [99.5,
  100.5)); ``eq``/``ne`` test the stored value inside/outside that range, ``gt``/``lt``/``ge``/
  ``le`` compare the stored value with the exact search value (``gt100`` "greater than exactly
  100"), ``sa``/``eb`` need the stored range [lo, hi] wholly above/below the search range,
  ``ap`` is ±10% of the search value. Quantity ``n|system|code`` matches system and code,
  ``n||code`` the code or the unit. A stored Range or comparator (``<5``) takes part through
  its ``value`` (the low end or the number written) except for ``sa``/``eb``;
- uri: exact; ``:below`` the stored uri starts with the value; ``:above`` the stored uri is a
  prefix of the value;
- composite: the component rows (``"<code>$<i>"``) of one value, joined on ``grp``;
- ``:missing=true`` no row for the parameter, ``false`` at least one.

Access control stays inside the query: every builder takes ``restrict``, a function of a
``resources`` alias returning ``(condition, params)`` (``?`` placeholders, no literal ``%``),
ANDed onto every resource row the query touches. A restriction whose ``index_rows``
attribute is true (access/sql.py's) reads no column but ``rid``, ``res_type`` and
``patient_key``, which every index row carries with its resource's values: a search of one
plain clause then tests it on the clause's index rows and never visits ``resources``
(:func:`_index_only_matches`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from decimal import Decimal
from functools import cache
from typing import Any, Literal

from huitong.fhir.dates import parse_date_range
from huitong.fhir.definitions import compartments, resource_types
from huitong.fhir.index_model import normalize_string
from huitong.fhir.search.model import Clause, Include, SearchQuery, SortKey, Value

__all__ = [
    "Dialect",
    "Restrict",
    "everything_referenced_sql",
    "everything_sql",
    "include_sql",
    "revinclude_sql",
    "search_count_sql",
    "search_estimate_sql",
    "search_page_sql",
    "token_pair",
    "token_pairs_sql",
]

Dialect = Literal["sqlite", "postgresql"]
Restrict = Callable[[str], tuple[str, list[Any]]]
Sql = tuple[str, list[Any]]

_DAY_US = 86_400_000_000
_TABLE = {
    "string": "idx_string",
    "token": "idx_token",
    "reference": "idx_reference",
    "date": "idx_date",
    "number": "idx_number",
    "quantity": "idx_quantity",
    "uri": "idx_uri",
}
# the column _sort aggregates per type: (ascending → MIN, descending → MAX)
_SORT_COLUMN = {
    "string": ("norm", "norm"),
    "token": ("code", "code"),
    "date": ("lo", "hi"),
    "number": ("value", "value"),
    "quantity": ("value", "value"),
    "uri": ("value", "value"),
}
_LIKE_TOP = "\U0010ffff"  # sorts after every other character: the end of a prefix range


class _Builder:
    """Per-statement state: the dialect, fresh aliases and the access restriction."""

    def __init__(self, dialect: Dialect, restrict: Restrict | None) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unknown SQL dialect {dialect!r}")
        self.dialect = dialect
        self.restrict = restrict
        self._n = 0

    def alias(self, stem: str) -> str:
        self._n += 1
        return f"{stem}{self._n}"

    def live(self, r: str, types: Sequence[str] = ()) -> Sql:
        """``r`` is current, not deleted, and visible under the restriction. ``types``: the
        statement limits ``r`` to these; a restriction with ``for_types`` (access/sql.py)
        then leaves out the type test it would repeat."""
        sql = f"{r}.deleted = 0" if self.dialect == "sqlite" else f"NOT {r}.deleted"
        if self.restrict is None:
            return sql, []
        narrow = getattr(self.restrict, "for_types", None) if types else None
        extra, params = narrow(r, types) if narrow is not None else self.restrict(r)
        return f"{sql} AND ({extra})", list(params)

    def one_of(self, expr: str, values: Sequence[Any]) -> Sql:
        if not values:
            return "1 = 0", []
        if len(values) == 1:
            return f"{expr} = ?", [values[0]]
        if self.dialect == "postgresql":
            return f"{expr} = ANY(?)", [list(values)]
        return f"{expr} IN ({', '.join('?' * len(values))})", list(values)

    def starts_with(self, column: str, prefix: str) -> Sql:
        """``column`` starts with ``prefix``, written so the lookup index is used."""
        like = _like_escape(prefix) + "%"
        if self.dialect == "sqlite":
            # SQLite's LIKE is case-insensitive and so never uses a BINARY index: the range
            # does the seek, the LIKE keeps the meaning exact
            return (
                f"{column} >= ? AND {column} < ? AND {column} LIKE ? ESCAPE '\\'",
                [prefix, prefix + _LIKE_TOP, like],
            )
        return f"{column} LIKE ? ESCAPE '\\'", [like]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _and(parts: Sequence[Sql]) -> Sql:
    kept = [p for p in parts if p[0]]
    if not kept:
        return "1 = 1", []
    return " AND ".join(f"({s})" if " OR " in s else s for s, _ in kept), [
        v for _, params in kept for v in params
    ]


def _or(parts: Sequence[Sql]) -> Sql:
    if not parts:
        return "1 = 0", []
    if len(parts) == 1:
        return parts[0]
    return "(" + " OR ".join(f"({s})" for s, _ in parts) + ")", [v for _, p in parts for v in p]


def _finish(b: _Builder, sql: str, params: list[Any]) -> Sql:
    if b.dialect == "postgresql":
        sql = sql.replace("?", "%s")
    return sql, params


def _all_types(types: Sequence[str]) -> tuple[str, ...]:
    return tuple(types) if types else tuple(sorted(resource_types()))


# -- value filters: conditions on one index row alias ``s`` -------------------


def _decimal_range(text: str) -> tuple[float, float, float]:
    """(value, lo, hi) of a search number with its implicit precision (half-open)."""
    number = Decimal(text)
    exponent = number.as_tuple().exponent
    half = Decimal(5).scaleb(int(exponent) - 1) if isinstance(exponent, int) else Decimal(0)
    return float(number), float(number - half), float(number + half)


def _range_filter(prefix: str, lo: Any, hi: Any, s_lo: str, s_hi: str) -> Sql:
    """Date prefixes on ranges — https://hl7.org/fhir/R4/search.html#prefix (range column)."""
    eq = f"{s_lo} >= ? AND {s_hi} <= ?", [lo, hi]
    if prefix == "eq":
        return eq
    if prefix == "ne":
        return f"NOT ({s_lo} >= ? AND {s_hi} <= ?)", [lo, hi]
    if prefix == "gt":
        return f"{s_hi} > ?", [hi]
    if prefix == "lt":
        return f"{s_lo} < ?", [lo]
    if prefix == "ge":
        return f"({s_hi} > ? OR ({s_lo} >= ? AND {s_hi} <= ?))", [hi, lo, hi]
    if prefix == "le":
        return f"({s_lo} < ? OR ({s_lo} >= ? AND {s_hi} <= ?))", [lo, lo, hi]
    if prefix == "sa":
        return f"{s_lo} > ?", [hi]
    if prefix == "eb":
        return f"{s_hi} < ?", [lo]
    # ap
    widen = max(_DAY_US, (hi - lo) // 10)
    return f"{s_lo} <= ? AND {s_hi} >= ?", [hi + widen, lo - widen]


def _date_filter(v: Value, s_lo: str, s_hi: str) -> Sql:
    lo, hi = parse_date_range(v.text)
    return _range_filter(v.prefix, lo, hi, s_lo, s_hi)


def _number_filter(prefix: str, text: str, s: str) -> Sql:
    value, lo, hi = _decimal_range(text)
    col = f"{s}.value"
    if prefix == "eq":
        return f"{col} >= ? AND {col} < ?", [lo, hi]
    if prefix == "ne":
        return f"NOT ({col} >= ? AND {col} < ?)", [lo, hi]
    if prefix in ("gt", "lt", "ge", "le"):
        op = {"gt": ">", "lt": "<", "ge": ">=", "le": "<="}[prefix]
        return f"{col} {op} ?", [value]
    if prefix == "sa":  # the stored range lies wholly above the search range
        return f"{s}.lo >= ?", [hi]
    if prefix == "eb":  # ... wholly below it
        return f"{s}.hi < ?", [lo]
    margin = abs(value) / 10 if value else hi - lo
    return f"{col} >= ? AND {col} <= ?", [value - margin, value + margin]


def _token_filter(v: Value, s: str) -> Sql:
    if not v.parts:
        return f"{s}.code = ?", [v.text]
    system, code = v.parts[0].text, v.parts[1].text
    if not system and not code:
        return f"{s}.system IS NULL", []
    if not system:
        return f"{s}.code = ? AND {s}.system IS NULL", [code]
    if not code:
        return f"{s}.system = ?", [system]
    return f"{s}.code = ? AND {s}.system = ?", [code, system]


def token_pair(q: SearchQuery) -> tuple[str, str, str, str] | None:
    """(type, param, system, code) when ``q`` is one plain ``param=system|code`` token
    clause with both parts given (a conditional write's ``identifier=`` criteria), else
    None: the form :func:`token_pairs_sql` answers for many queries in one statement."""
    if len(q.resource_types) != 1 or q.compartment is not None or len(q.clauses) != 1:
        return None
    c = q.clauses[0]
    if (c.type != "token" or c.modifier is not None or c.chain is not None
            or c.has is not None or len(c.values) != 1 or c.param.startswith("_")):
        return None
    v = c.values[0]
    if len(v.parts) != 2 or not v.parts[0].text or not v.parts[1].text:
        return None
    return q.resource_types[0], c.param, v.parts[0].text, v.parts[1].text


def token_pairs_sql(resource_type: str, param: str, columns: str) -> str:
    """PostgreSQL: the current resources of ``resource_type`` whose ``param`` token is one
    of the ``(system, code)`` pairs of the statement's one parameter (a JSON array of
    pairs), as ``(pair's 1-based position, columns…)`` in pair then rid order — what
    ``search_page_sql`` returns for each pair's query (``_token_filter``: code and system
    equal), for all of them at once."""
    return (
        "WITH q AS (SELECT p->>0 AS system, p->>1 AS code, i FROM "
        "json_array_elements(%s::json) WITH ORDINALITY AS x(p, i)), "
        "m AS (SELECT DISTINCT q.i AS pair_i, t.rid AS pair_rid FROM q JOIN idx_token t "
        f"ON t.res_type = '{_quoted(resource_type)}' AND t.param = '{_quoted(param)}' "
        "AND t.code = q.code AND t.system = q.system) "
        f"SELECT m.pair_i, {columns} FROM m JOIN resources ON resources.rid = m.pair_rid "
        "ORDER BY m.pair_i, m.pair_rid"
    )


def _quoted(text: str) -> str:
    # type and parameter names come from the definitions tables ([A-Za-z0-9_-]); doubled
    # quotes keep any other text a literal all the same
    return text.replace("'", "''")


def _is_url(text: str) -> bool:
    return "://" in text or text.startswith("urn:")


def _reference_filter(v: Value, s: str, type_modifier: str | None) -> Sql:
    if v.parts:  # canonical url|version
        return f"{s}.url = ?", [v.parts[0].text]
    if _is_url(v.text):
        return f"{s}.url = ?", [v.text]
    pieces = v.text.split("/")
    conds: list[Sql] = [(f"{s}.target_id = ?", [pieces[-1] if len(pieces) < 3 else pieces[1]])]
    if len(pieces) >= 2:
        conds.append((f"{s}.target_type = ?", [pieces[0]]))
    if type_modifier:
        conds.append((f"{s}.target_type = ?", [type_modifier]))
    return _and(conds)


def _quantity_filter(v: Value, s: str) -> Sql:
    if not v.parts:
        return _number_filter(v.prefix, v.text, s)
    number, system, code = (p.text for p in v.parts)
    conds = [_number_filter(v.prefix, number, s)]
    if system:
        conds.append((f"{s}.system = ?", [system]))
        if code:
            conds.append((f"{s}.code = ?", [code]))
    elif code:
        conds.append((f"({s}.code = ? OR {s}.unit = ?)", [code, code]))
    return _and(conds)


def _uri_filter(b: _Builder, v: Value, s: str, modifier: str | None) -> Sql:
    if modifier == "below":
        return b.starts_with(f"{s}.value", v.text)
    if modifier == "above":
        prefixes = [v.text[:i] for i in range(1, min(len(v.text), 2048) + 1)]
        return b.one_of(f"{s}.value", prefixes)
    return f"{s}.value = ?", [v.text]


def _string_filter(b: _Builder, v: Value, s: str, modifier: str | None) -> Sql:
    norm = normalize_string(v.text)
    if modifier == "exact":
        return f"{s}.norm = ? AND {s}.exact = ?", [norm, v.text]
    if modifier == "contains":
        return f"{s}.norm LIKE ? ESCAPE '\\'", ["%" + _like_escape(norm) + "%"]
    return b.starts_with(f"{s}.norm", norm)


def _text_filter(v: Value, s: str) -> Sql:
    norm = _like_escape(normalize_string(v.text))
    return (
        f"({s}.text LIKE ? ESCAPE '\\' OR {s}.text LIKE ? ESCAPE '\\')",
        [norm + "%", "% " + norm + "%"],
    )


def _value_filter(b: _Builder, ptype: str, v: Value, s: str, modifier: str | None) -> Sql:
    if ptype == "string":
        return _string_filter(b, v, s, modifier)
    if ptype == "token":
        if modifier == "text":
            return _text_filter(v, s)
        if modifier == "of-type":
            system, code, value = (p.text for p in v.parts)
            sys_cond = f"{s}.system = ?" if system else f"{s}.system IS NULL"
            return f"{s}.code = ? AND {sys_cond}", [
                f"{code}|{value}",
                *([system] if system else []),
            ]
        return _token_filter(v, s)
    if ptype == "reference":
        return _reference_filter(v, s, modifier)
    if ptype == "date":
        return _date_filter(v, f"{s}.lo", f"{s}.hi")
    if ptype == "number":
        return _number_filter(v.prefix, v.text, s)
    if ptype == "quantity":
        return _quantity_filter(v, s)
    if ptype == "uri":
        return _uri_filter(b, v, s, modifier)
    raise ValueError(f"no value filter for search type {ptype!r}")


# -- clauses: conditions on one resource alias ``r`` --------------------------

# "in": the clause drives (``rid IN (...)``); "exists": a correlated condition the planner
# may turn into a join; "probe": checked per candidate by rid through the ``idx_*_rid``
# indexes alone, in the order the candidates are read (a page read in rid order)
Style = Literal["in", "exists", "probe"]


def _index_cond(
    b: _Builder,
    table: str,
    types: Sequence[str],
    param: str,
    body: Sql | Callable[[str], Sql],
    r: str,
    style: Style,
    *,
    negate: bool = False,
) -> Sql:
    """``r`` has (``negate``: has no) row in ``table`` for ``param`` matching ``body``."""
    s = b.alias("s")
    body_sql, body_params = body(s) if callable(body) else body
    if style == "in" and not negate:
        type_sql, type_params = b.one_of(f"{s}.res_type", _all_types(types))
        return (
            f"{r}.rid IN (SELECT {s}.rid FROM {table} {s} WHERE {type_sql} AND "
            f"{s}.param = ? AND {body_sql})",
            [*type_params, param, *body_params],
        )
    # the type is implied by the rid; PostgreSQL is told anyway so that it can weigh the
    # lookup index, SQLite is not (it would take the lookup index for every probe). A probe
    # leaves it out: res_type is not in idx_*_rid, and naming it would read the table row
    with_type = types and b.dialect == "postgresql" and style == "exists"
    type_sql, type_params = b.one_of(f"{s}.res_type", types) if with_type else ("", [])
    sql = (
        f"EXISTS (SELECT 1 FROM {table} {s} WHERE {s}.rid = {r}.rid AND "
        f"{type_sql + ' AND ' if type_sql else ''}{s}.param = ? AND {body_sql})"
    )
    return ("NOT " + sql if negate else sql), [*type_params, param, *body_params]


def _clause_sql(b: _Builder, c: Clause, r: str, style: Style, types: Sequence[str]) -> Sql:
    types = c.resource_types or types
    if c.has is not None:
        return _has_sql(b, c, r, style, types)
    if c.chain is not None:
        return _chain_sql(b, c, r, style, types)
    if c.param == "_id":
        ids = [v.text for v in c.values]
        sql, params = b.one_of(f"{r}.res_id", ids)
        return (f"NOT ({sql})" if c.modifier == "not" else sql), params
    if c.param == "_lastUpdated":
        if c.modifier == "missing":
            return ("1 = 0" if c.values[0].text == "true" else "1 = 1"), []
        col = f"{r}.last_updated"
        return _or([_date_filter(v, col, col) for v in c.values])
    if c.param == "_list":
        return _list_sql(b, c, r)
    if c.modifier == "missing":
        table = _TABLE[c.components[0] if c.type == "composite" else c.type]
        param = f"{c.param}$0" if c.type == "composite" else c.param
        return _index_cond(
            b,
            table,
            types,
            param,
            ("1 = 1", []),
            r,
            "probe" if style == "probe" else "exists",
            negate=c.values[0].text == "true",
        )
    if c.type == "composite":
        return _composite_sql(b, c, r, style, types)
    table, param, body = _index_parts(b, c)
    negate = c.modifier == "not"
    if negate and style == "in":
        style = "exists"
    return _index_cond(b, table, types, param, body, r, style, negate=negate)


def _index_parts(b: _Builder, c: Clause) -> tuple[str, str, Callable[[str], Sql]]:
    """(table, row param, filter on a row alias) of a clause answered by one index table.

    The modifiers left here: exact/contains (string), text/not/of-type (token), above/below
    (uri), identifier or a resource type (reference).
    """
    if c.modifier == "identifier":
        return (
            "idx_token",
            f"{c.param}:identifier",
            lambda s: _or([_token_filter(v, s) for v in c.values]),
        )
    param = f"{c.param}:of-type" if c.modifier == "of-type" else c.param
    return (
        _TABLE[c.type],
        param,
        lambda s: _or([_value_filter(b, c.type, v, s, c.modifier) for v in c.values]),
    )


def _composite_sql(b: _Builder, c: Clause, r: str, style: Style, types: Sequence[str]) -> Sql:
    aliases = [b.alias("s") for _ in c.components]
    first = aliases[0]
    joins: list[str] = []
    join_params: list[Any] = []
    for i, (ctype, s) in enumerate(zip(c.components, aliases, strict=True)):
        if i == 0:
            continue
        joins.append(
            f"JOIN {_TABLE[ctype]} {s} ON {s}.rid = {first}.rid AND {s}.grp = {first}.grp "
            f"AND {s}.param = ?"
        )
        join_params.append(f"{c.param}${i}")
    matches = []
    for v in c.values:
        matches.append(
            _and(
                [
                    _value_filter(b, ctype, part, s, None)
                    for ctype, part, s in zip(c.components, v.parts, aliases, strict=True)
                ]
            )
        )
    match_sql, match_params = _or(matches)
    head = f"FROM {_TABLE[c.components[0]]} {first} {' '.join(joins)}"
    if style == "in":
        type_sql, type_params = b.one_of(f"{first}.res_type", _all_types(types))
        return (
            f"{r}.rid IN (SELECT {first}.rid {head} WHERE {type_sql} AND {first}.param = ? "
            f"AND {match_sql})",
            [*join_params, *type_params, f"{c.param}$0", *match_params],
        )
    return (
        f"EXISTS (SELECT 1 {head} WHERE {first}.rid = {r}.rid AND {first}.param = ? "
        f"AND {match_sql})",
        [*join_params, f"{c.param}$0", *match_params],
    )


def _chain_sql(b: _Builder, c: Clause, r: str, style: Style, types: Sequence[str]) -> Sql:
    """``subject:Patient.name=x``: a reference row of ``r`` points at a matching target."""
    assert c.chain is not None
    targets = c.chain.target_types
    x, t = b.alias("x"), b.alias("t")
    if style == "in":
        inner_sql, inner_params = _matching(b, t, targets, [c.chain.clause])
        type_sql, type_params = b.one_of(f"{x}.res_type", _all_types(types))
        if len(targets) == 1:
            target = f"{x}.target_type = ? AND {x}.target_id IN (SELECT {t}.res_id {inner_sql})"
            target_params = [targets[0], *inner_params]
        else:
            target = (
                f"({x}.target_type, {x}.target_id) IN (SELECT {t}.res_type, {t}.res_id {inner_sql})"
            )
            target_params = inner_params
        return (
            f"{r}.rid IN (SELECT {x}.rid FROM idx_reference {x} WHERE {type_sql} AND "
            f"{x}.param = ? AND {target})",
            [*type_params, c.param, *target_params],
        )
    live_sql, live_params = b.live(t)
    type_sql, type_params = b.one_of(f"{t}.res_type", targets)
    inner_sql, inner_params = _clause_sql(b, c.chain.clause, t, "exists", targets)
    return (
        f"EXISTS (SELECT 1 FROM idx_reference {x} JOIN resources {t} ON "
        f"{t}.res_type = {x}.target_type AND {t}.res_id = {x}.target_id "
        f"WHERE {x}.rid = {r}.rid AND {x}.param = ? AND {type_sql} AND {live_sql} "
        f"AND {inner_sql})",
        [c.param, *type_params, *live_params, *inner_params],
    )


def _has_sql(b: _Builder, c: Clause, r: str, style: Style, types: Sequence[str]) -> Sql:
    """``_has:Observation:patient:code=x``: a matching source resource refers to ``r``."""
    assert c.has is not None
    has = c.has
    x, o = b.alias("x"), b.alias("o")
    if style == "in":
        direct = _index_only_rids(b, has.clause, o, has.source_type)
        if direct is not None:
            # Index rows exist only for live current versions, so with no access restriction
            # the sources' rids come straight from the index without visiting resources.
            sources_sql, inner_params = direct
        else:
            inner_sql, inner_params = _matching(b, o, (has.source_type,), [has.clause])
            sources_sql = f"SELECT {o}.rid {inner_sql}"
        # follow the matching sources' own reference rows by rid (idx_reference_rid alone:
        # the sources' rids already imply res_type, which that index does not hold)
        refs = f"FROM idx_reference {x} WHERE {x}.param = ? AND {x}.rid IN ({sources_sql})"
        params = [has.reference_param, *inner_params]
        if len(types) == 1:
            return (
                f"{r}.res_id IN (SELECT {x}.target_id {refs} AND {x}.target_type = ?)",
                [*params, types[0]],
            )
        return f"({r}.res_type, {r}.res_id) IN (SELECT {x}.target_type, {x}.target_id {refs})", (
            params
        )
    inner_style: Style = "probe" if style == "probe" else "exists"
    # A probe must stay a per-candidate check: PostgreSQL would otherwise turn the EXISTS
    # into a semi-join that reads every source first. OFFSET 0 is its documented fence
    # (a subquery with OFFSET is never pulled up); SQLite always checks EXISTS per row.
    fence = " OFFSET 0" if style == "probe" and b.dialect == "postgresql" else ""
    if style == "probe" and _keyed(c, types):
        return _keyed_probe(b, c, r, fence)
    if _index_only_rids(b, has.clause, o, has.source_type) is not None:
        # As above: the source's index rows are enough, keyed by the reference row's rid.
        inner_sql, inner_params = _clause_sql(b, has.clause, x, inner_style, (has.source_type,))
        return (
            f"EXISTS (SELECT 1 FROM idx_reference {x} "
            f"WHERE {x}.target_id = {r}.res_id AND {x}.target_type = {r}.res_type "
            f"AND {x}.res_type = ? AND {x}.param = ? AND {inner_sql}{fence})",
            [has.source_type, has.reference_param, *inner_params],
        )
    live_sql, live_params = b.live(o)
    inner_sql, inner_params = _clause_sql(b, has.clause, o, inner_style, (has.source_type,))
    return (
        f"EXISTS (SELECT 1 FROM idx_reference {x} JOIN resources {o} ON {o}.rid = {x}.rid "
        f"WHERE {x}.target_id = {r}.res_id AND {x}.target_type = {r}.res_type "
        f"AND {x}.res_type = ? AND {x}.param = ? AND {live_sql} AND {inner_sql}{fence})",
        [has.source_type, has.reference_param, *live_params, *inner_params],
    )


def _plain(c: Clause) -> bool:
    """A value clause answered by one index table alone (no chain, ``_has``, ``_id``...)."""
    return (
        c.chain is None
        and c.has is None
        and c.type in _TABLE
        and c.param not in ("_id", "_lastUpdated", "_list")
        and c.modifier not in ("missing", "not")
    )


def _keyed(c: Clause, types: Sequence[str]) -> bool:
    """Whether a ``_has`` can be answered through the compartment key (:func:`_keyed_probe`):
    it finds Patients, and its inner clause names token codes (``code=x``, ``system|x``,
    ``:identifier``, ``:of-type``) — a value without a code (``system|``) would make the
    seek by code and compartment read every code of the system."""
    assert c.has is not None
    return tuple(types) == ("Patient",) and _names_codes(c.has.clause)


def _names_codes(c: Clause) -> bool:
    """A token clause whose every value names a code, so that ``idx_token_lookup`` can seek
    its rows of one compartment (codes, then ``patient_key``)."""
    if not _plain(c) or c.type != "token" or c.modifier not in (None, "identifier", "of-type"):
        return False
    return c.modifier == "of-type" or all(not v.parts or v.parts[1].text for v in c.values)


def _patient_named(c: Clause) -> tuple[str, bool] | None:
    """(id, typed) of the one resource a reference clause names by id, when it may be a
    Patient (``patient=x``, ``subject=Patient/x``, ``subject:Patient=x``); ``typed`` when
    the clause says it is one. None otherwise."""
    if c.type != "reference" or c.chain is not None or c.has is not None or len(c.values) != 1:
        return None
    if c.modifier not in (None, "Patient"):
        return None
    v = c.values[0]
    if v.parts or _is_url(v.text):
        return None
    pieces = v.text.split("/")
    if len(pieces) >= 2:
        return (pieces[1], True) if pieces[0] == "Patient" else None
    return pieces[0], c.modifier == "Patient"


def _keyed_reference(
    b: _Builder, clauses: Sequence[Clause], driver: int | None, types: Sequence[str], r: str
) -> Sql | None:
    """``Observation?patient=x&code=y``: the candidates from the compartment key instead of
    from every resource that refers to the patient (869 Observations for one Synthea
    patient, each then probed for the code): the rows of ``idx_token_lookup`` with the code
    filed under that patient, and the few reference rows to the patient from another
    compartment (``idx_reference_cross``). Every match is among them — its code row is filed
    under the patient, or its reference row crosses compartments — and every clause is then
    checked on each. A bare id (``patient=x``) may also name a Group or another type: the
    reference rows to such a target are candidates too, read from the lookup index among the
    rows of that id. None unless the driving clause names one id and another clause names
    token codes."""
    if driver is None or driver < 0 or len(types) != 1:
        return None
    ref = clauses[driver]
    named = _patient_named(ref)
    token = next((c for c in clauses if c is not ref and _names_codes(c)), None)
    if named is None or token is None:
        return None
    patient, typed = named
    table, param, body = _index_parts(b, token)
    k, y = b.alias("k"), b.alias("x")
    body_sql, body_params = body(k)
    sql = (
        f"SELECT {k}.rid FROM {table} {k} WHERE {k}.res_type = ? AND {k}.param = ? "
        f"AND {body_sql} AND {k}.patient_key = ? UNION ALL SELECT {y}.rid FROM idx_reference {y} "
        f"WHERE {y}.res_type = ? AND {y}.param = ? AND {y}.target_id = ? AND {_cross(y)}"
    )
    params = [types[0], param, *body_params, patient, types[0], ref.param, patient]
    if not typed:
        z = b.alias("x")
        sql += (
            f" UNION ALL SELECT {z}.rid FROM idx_reference {z} WHERE {z}.res_type = ? "
            f"AND {z}.param = ? AND {z}.target_id = ? AND {z}.target_type <> 'Patient'"
        )
        params += [types[0], ref.param, patient]
    return f"{r}.rid IN ({sql})", params


def _cross(x: str) -> str:
    """Reference row ``x`` points at a Patient other than its own resource's compartment (or
    its resource has none): the rows of the partial index ``idx_reference_cross`` (migration
    0016), written out as its predicate so that both engines can use it. Few in practice:
    a golden record's links, a Group's members, an Observation about another patient."""
    return (
        f"{x}.target_type = 'Patient' "
        f"AND ({x}.patient_key IS NULL OR {x}.patient_key <> {x}.target_id)"
    )


def _source_join(b: _Builder, x: str) -> Sql:
    """With an access restriction, the source of reference row ``x`` must be visible too
    (without one, index rows exist only for live current versions: nothing to check)."""
    if b.restrict is None:
        return "", []
    o = b.alias("o")
    live, params = b.live(o)
    return f" JOIN resources {o} ON {o}.rid = {x}.rid AND {live}", params


def _keyed_own(b: _Builder, c: Clause, r: str, fence: str, first: str | None = None) -> Sql:
    """A matching source filed under ``r``'s compartment refers to ``r``: one seek in
    ``idx_token_lookup`` (the code, then ``patient_key``) and one reference probe. ``first``
    names a column holding the rid of one such source, whose reference is probed first (the
    seek is then needed only when that source refers elsewhere)."""
    assert c.has is not None
    has = c.has
    table, param, body = _index_parts(b, has.clause)
    k, x = b.alias("k"), b.alias("x")
    body_sql, body_params = body(k)
    join, join_params = _source_join(b, k)
    seek = (
        f"EXISTS (SELECT 1 FROM {table} {k} JOIN idx_reference {x} ON {x}.rid = {k}.rid{join} "
        f"WHERE {k}.res_type = ? AND {k}.param = ? AND {body_sql} "
        f"AND {k}.patient_key = {r}.res_id AND {x}.param = ? "
        f"AND {x}.target_type = {r}.res_type AND {x}.target_id = {r}.res_id{fence})"
    )
    seek_params = [*join_params, has.source_type, param, *body_params, has.reference_param]
    if first is None:
        return seek, seek_params
    f = b.alias("x")
    f_join, f_params = _source_join(b, f)
    return (
        f"(EXISTS (SELECT 1 FROM idx_reference {f}{f_join} WHERE {f}.rid = {first} "
        f"AND {f}.param = ? AND {f}.target_type = {r}.res_type AND {f}.target_id = {r}.res_id"
        f"{fence}) OR {seek})",
        [*f_params, has.reference_param, *seek_params],
    )


def _keyed_cross(b: _Builder, c: Clause, r: str, fence: str) -> Sql:
    """A matching source filed under another compartment (or none) refers to ``r``: one seek
    in ``idx_reference_cross``, usually empty, and a probe of each row found."""
    assert c.has is not None
    has = c.has
    y = b.alias("x")
    join, join_params = _source_join(b, y)
    inner_sql, inner_params = _clause_sql(b, has.clause, y, "probe", (has.source_type,))
    return (
        f"EXISTS (SELECT 1 FROM idx_reference {y}{join} WHERE {y}.res_type = ? "
        f"AND {y}.param = ? AND {y}.target_id = {r}.res_id AND {_cross(y)} "
        f"AND {inner_sql}{fence})",
        [*join_params, has.source_type, has.reference_param, *inner_params],
    )


def _keyed_probe(b: _Builder, c: Clause, r: str, fence: str) -> Sql:
    """``r`` (a Patient) is referred to by a matching source, as two halves that together
    are exact: the source's index rows carry ``patient_key``, its Patient compartment, so
    either the source is filed under ``r`` (:func:`_keyed_own`) or its reference row is one
    of the few that point across compartments (:func:`_keyed_cross`). A patient without a
    match costs a few seeks, not one probe per resource that refers to it."""
    own_sql, own_params = _keyed_own(b, c, r, fence)
    cross_sql, cross_params = _keyed_cross(b, c, r, fence)
    return f"({own_sql} OR {cross_sql})", [*own_params, *cross_params]


def _keyed_candidates(b: _Builder, c: Clause, half: Literal["own", "cross"]) -> Sql:
    """``SELECT id ...``: the Patients one half of :func:`_keyed_probe` can admit, each once,
    from an index alone — the compartments of the matching sources (``own``, in
    ``idx_token_lookup``) or the targets of cross-compartment rows (``cross``)."""
    assert c.has is not None
    has = c.has
    if half == "cross":
        y = b.alias("x")
        return (
            f"SELECT DISTINCT {y}.target_id AS id FROM idx_reference {y} "
            f"WHERE {y}.res_type = ? AND {y}.param = ? AND {_cross(y)}",
            [has.source_type, has.reference_param],
        )
    table, param, body = _index_parts(b, has.clause)
    k = b.alias("k")
    body_sql, body_params = body(k)
    # one source per compartment comes along (``first`` of :func:`_keyed_own`); grouped in
    # the index's own order, so the groups stream out without reading every source first
    return (
        f"SELECT {k}.patient_key AS id, MIN({k}.rid) AS rid FROM {table} {k} "
        f"WHERE {k}.res_type = ? AND {k}.param = ? AND {body_sql} GROUP BY {k}.patient_key",
        [has.source_type, param, *body_params],
    )


def _index_only_rids(
    b: _Builder, c: Clause, o: str, source_type: str | Sequence[str]
) -> Sql | None:
    """``SELECT rid FROM idx_…`` for a plain value clause, or None when the clause needs the
    resources table (an access restriction, ``:missing``, ``:not``, chains, nested ``_has``)."""
    if b.restrict is not None or c.chain is not None or c.has is not None:
        return None
    if c.modifier in ("missing", "not") or c.param in ("_id", "_lastUpdated"):
        return None
    types = (source_type,) if isinstance(source_type, str) else tuple(source_type)
    sql, params = _clause_sql(b, c, o, "in", types)
    prefix = f"{o}.rid IN ("
    if not (sql.startswith(prefix) and sql.endswith(")")):
        return None
    inner = sql[len(prefix) : -1]
    return (inner, params) if inner.startswith("SELECT ") else None


def _list_sql(b: _Builder, c: Clause, r: str) -> Sql:
    """``_list=42``: ``r`` is an item of List/42 — https://hl7.org/fhir/R4/search.html#list."""
    x, lst = b.alias("x"), b.alias("l")
    live_sql, live_params = b.live(lst)
    ids_sql, ids_params = b.one_of(f"{lst}.res_id", [v.text for v in c.values])
    return (
        f"({r}.res_type, {r}.res_id) IN (SELECT {x}.target_type, {x}.target_id "
        f"FROM resources {lst} JOIN idx_reference {x} ON {x}.rid = {lst}.rid "
        f"WHERE {lst}.res_type = ? AND {ids_sql} AND {live_sql} AND {x}.param = ?)",
        ["List", *ids_params, *live_params, "item"],
    )


# -- compartments -------------------------------------------------------------


@cache
def _compartment_params(ctype: str) -> dict[str, tuple[str, ...]]:
    """{resource type: reference params} that put a resource in a ``ctype`` compartment."""
    return {
        t: tuple(p for p in codes if not p.startswith("{"))
        for t, codes in compartments().get(ctype, {}).items()
        if any(not p.startswith("{") for p in codes)
    }


def _member_sql(
    b: _Builder, ctype: str, cid: str | Sequence[str], types: Sequence[str], r: str
) -> Sql:
    """``r`` is in the compartment ``ctype/cid`` (the focal resource itself included).
    ``cid`` may be several ids: a golden Patient and the source records linked to it form
    one person's compartment."""
    ids = [cid] if isinstance(cid, str) else list(cid)
    by_params: dict[tuple[str, ...], list[str]] = {}
    for t, codes in _compartment_params(ctype).items():
        if not types or t in types:
            by_params.setdefault(codes, []).append(t)
    x = b.alias("x")
    pairs: list[Sql] = []
    for codes, members in sorted(by_params.items()):
        t_sql, t_params = b.one_of(f"{x}.res_type", members)
        p_sql, p_params = b.one_of(f"{x}.param", codes)
        pairs.append((f"{t_sql} AND {p_sql}", [*t_params, *p_params]))
    # One rid set (members' index rows, then the focal resource itself): as a single
    # ``rid IN (... UNION ALL ...)`` it drives the query from the compartment's rows. An OR
    # of the two made PostgreSQL walk every resource in rid order instead, filtering each
    # (a whole-table scan for a patient with fewer resources than the page).
    members: list[Sql] = []
    if pairs:
        pair_sql, pair_params = _or(pairs)
        id_sql, id_params = b.one_of(f"{x}.target_id", ids)
        members.append(
            (
                f"SELECT {x}.rid FROM idx_reference {x} WHERE {pair_sql} "
                f"AND {id_sql} AND {x}.target_type = ?",
                [*pair_params, *id_params, ctype],
            )
        )
    if not types or ctype in types:
        o = b.alias("o")
        own_sql, own_params = b.one_of(f"{o}.res_id", ids)
        own = f"SELECT {o}.rid FROM resources {o} WHERE {o}.res_type = ? AND {own_sql}"
        members.append((own, [ctype, *own_params]))
    if not members:
        return "1 = 0", []
    return (
        f"{r}.rid IN ({' UNION ALL '.join(m for m, _ in members)})",
        [v for _, params in members for v in params],
    )


# -- the search ---------------------------------------------------------------


def _rank(c: Clause) -> float | None:
    """How well a clause drives the query through a lookup index (lower is better); None for
    clauses that can only be checked per candidate. A guess from the kind of clause: the
    builders see no statistics."""
    if c.modifier in ("missing", "not", "text", "contains") or c.param == "_lastUpdated":
        return None
    if c.param == "_id":
        return 0
    if c.chain is not None:
        # a chain narrows through the (usually smaller) target type: selective when its
        # innermost clause is
        inner = _rank(c.chain.clause)
        return 1.5 if inner is not None and inner <= 4 else 8
    if c.has is not None:
        return 7
    if c.type == "reference":
        return 1 if c.modifier != "identifier" else 2
    if c.type == "token":
        return 3 if c.param in ("_tag", "_security") else 2
    if c.param == "_list" or c.type == "uri" or c.modifier == "exact":
        return 3
    if c.type == "string":
        return 4
    if c.type in ("quantity", "composite"):
        return 5
    if any(v.prefix == "ne" for v in c.values):
        return None
    return 6


_COMPARTMENT = -1  # "driver" index meaning: the compartment membership drives


def _driver(clauses: Sequence[Clause], compartment: tuple[str, str] | None) -> int | None:
    """The clause written as ``rid IN (...)`` (the others become ``EXISTS``), or None."""
    ranked = [(rank, i) for i, c in enumerate(clauses) if (rank := _rank(c)) is not None]
    best = min(ranked) if ranked else None
    if compartment is not None and (best is None or best[0] > 1):
        return _COMPARTMENT
    return best[1] if best else None


def _matching(
    b: _Builder,
    r: str,
    types: Sequence[str],
    clauses: Sequence[Clause],
    compartment: tuple[str, str] | None = None,
    *,
    rid_order_scan: bool = False,
    keyed: Literal["own", "cross"] | None = None,
) -> Sql:
    """``FROM resources r WHERE ...``: the live resources of ``types`` matching every clause.

    ``rid_order_scan``: no clause drives; every clause is checked per resource, read in rid
    order so that ``ORDER BY rid LIMIT n`` stops after n matches. ``keyed``: the driving
    ``_has`` (one :func:`_keyed` accepts) is read from one half of :func:`_keyed_probe`:
    ``own`` the matches a source filed under the patient makes, ``cross`` the others; the
    two are disjoint and together make every match (:func:`_keyed_matches`).
    """
    driver = None if rid_order_scan else _driver(clauses, compartment)
    conds: list[Sql] = [b.live(r, types)]
    keyed_ref = None if keyed else _keyed_reference(b, clauses, driver, types, r)
    if keyed_ref is not None:
        # the compartment key drives; every clause, the reference included, is checked
        conds.append(keyed_ref)
        driver, rid_order_scan = None, True
    if types:
        # SQLite would rather scan resources_type_updated than follow an ``rid IN`` driver;
        # a unary + keeps it off that index (the driver already implies the type)
        by_rid = rid_order_scan or driver == _COMPARTMENT
        if driver is not None and driver >= 0:
            by_rid = clauses[driver].param != "_id" and clauses[driver].has is None
        plus = "+" if by_rid and b.dialect == "sqlite" else ""
        conds.append(b.one_of(f"{plus}{r}.res_type", types))
    if compartment is not None:
        member = _member_sql(b, compartment[0], compartment[1], types, r)
        conds.append(member)
    rest: Style = "probe" if rid_order_scan else "exists"
    for i, c in enumerate(clauses):
        if keyed is not None and i == driver:
            # the candidates (:func:`_keyed_candidates`, alias ``t``) are joined by the caller
            fence = " OFFSET 0" if b.dialect == "postgresql" else ""
            if keyed == "own":
                conds.append(_keyed_own(b, c, r, fence, first="t.rid"))
            else:
                own_sql, own_params = _keyed_own(b, c, r, fence)
                conds += [_keyed_cross(b, c, r, fence), (f"NOT {own_sql}", own_params)]
            continue
        conds.append(_clause_sql(b, c, r, "in" if i == driver else rest, types))
    where_sql, where_params = _and(conds)
    return f"FROM resources {r} WHERE {where_sql}", where_params


# A _has driver costs in proportion to its matching source resources (all of them are read
# to find their targets); checking each candidate in rid order instead costs in proportion to
# the candidates read before the page fills. Past this many sources, the page is read the
# second way. The count always takes the first (for a _has through the compartment key,
# :func:`_keyed_matches`).
_HAS_DENSE = 2000
# For a _has read through the compartment key the walk costs a few seeks per candidate, so
# what matters is how many patients match, not how many sources: past this many compartments
# with a matching source, a page is found sooner by walking the candidates (about
# page size x candidates / matches of them) than by reading every match and sorting.
_HAS_SPREAD = 250


def _keyed_guard(b: _Builder, c: Clause) -> Sql:
    """``(SELECT COUNT(*) ...)``: how many distinct compartments (up to ``_HAS_SPREAD``) hold a
    matching source of a keyed ``_has`` (:func:`_keyed`): ``idx_token_lookup`` keeps them in
    order under each code, so this reads only as many rows as it takes to find them."""
    assert c.has is not None
    table, param, body = _index_parts(b, c.has.clause)
    g = b.alias("g")
    body_sql, body_params = body(g)
    return (
        f"(SELECT COUNT(*) FROM (SELECT DISTINCT {g}.patient_key FROM {table} {g} "
        f"WHERE {g}.res_type = ? AND {g}.param = ? AND {body_sql} LIMIT ?) {g}n)",
        [c.has.source_type, param, *body_params, _HAS_SPREAD],
    )


def _has_guard(b: _Builder, c: Clause) -> Sql | None:
    """``(SELECT COUNT(*) FROM (... LIMIT n))``: how many index rows (up to n) match the inner
    clause of a ``_has`` — cheap, from the lookup index alone. None when the inner clause is
    not a plain index clause."""
    assert c.has is not None
    inner = c.has.clause
    if not _plain(inner):
        return None
    table, param, body = _index_parts(b, inner)
    g = b.alias("g")
    body_sql, body_params = body(g)
    return (
        f"(SELECT COUNT(*) FROM (SELECT 1 FROM {table} {g} WHERE {g}.res_type = ? AND "
        f"{g}.param = ? AND {body_sql} LIMIT ?) {g}n)",
        [c.has.source_type, param, *body_params, _HAS_DENSE],
    )


def _sort_sql(b: _Builder, key: SortKey, r: str) -> Sql:
    """One ``ORDER BY`` term. Text compares by code point on both engines (PostgreSQL is told
    ``COLLATE "C"``, SQLite's BINARY already does), so pages come in the same order."""
    direction = "DESC" if key.descending else "ASC"
    collate = ' COLLATE "C"' if b.dialect == "postgresql" else ""
    if key.param == "_id":
        return f"{r}.res_id{collate} {direction}", []
    if key.param == "_lastUpdated":
        return f"{r}.last_updated {direction}", []
    s = b.alias("s")
    agg = "MAX" if key.descending else "MIN"
    if key.type == "reference":
        expr = f"COALESCE({s}.target_type || '/' || {s}.target_id, {s}.url){collate}"
    elif key.type in ("string", "token", "uri"):
        expr = f"{s}.{_SORT_COLUMN[key.type][0]}{collate}"
    else:
        expr = f"{s}.{_SORT_COLUMN[key.type][1 if key.descending else 0]}"
    return (
        f"(SELECT {agg}({expr}) FROM {_TABLE[key.type]} {s} WHERE {s}.rid = {r}.rid "
        f"AND {s}.param = ?) {direction} NULLS LAST",
        [key.param],
    )


def search_page_sql(q: SearchQuery, dialect: Dialect, *, restrict: Restrict | None = None) -> Sql:
    """The rids of one page of ``q``, in ``_sort`` order then by rid.

    Selects ``q.count + 1`` rows from ``q.offset``: an extra row means there is a next page.
    Sorting on a parameter uses, per resource, the smallest value ascending and the largest
    descending (https://hl7.org/fhir/R4/search.html#sort); resources without one sort last.
    """
    b = _Builder(dialect, restrict)
    alone = _index_only_matches(b, q)
    if alone is not None and not q.sort:
        return _finish(
            b,
            f"SELECT m.rid FROM ({alone[0]}) m ORDER BY m.rid LIMIT ? OFFSET ?",
            [*alone[1], q.count + 1, q.offset],
        )
    driver = _driver(q.clauses, q.compartment)
    # SQLite's parser has a fixed stack: an access restriction on every alias of the
    # two-armed page nests too deep for it, so restricted SQLite searches take the plain form.
    adaptive = restrict is None or dialect != "sqlite"
    if (adaptive and not q.sort and driver is not None and driver >= 0
            and q.clauses[driver].has is not None):
        c = q.clauses[driver]
        if _keyed(c, c.resource_types or q.resource_types):
            keyed = _keyed_matches(b, q)
            assert keyed is not None
            few = (f"SELECT rid FROM ({keyed[0]}) m", keyed[1])
            return _finish(b, *_adaptive_page(b, q, few, _keyed_guard(b, c), _HAS_SPREAD))
        guard = _has_guard(b, c)
        if guard is not None:
            where_sql, where_params = _matching(
                b, "r", q.resource_types, q.clauses, q.compartment
            )
            few = (f"SELECT r.rid {where_sql}", where_params)
            return _finish(b, *_adaptive_page(b, q, few, guard, _HAS_DENSE))
    where_sql, where_params = _matching(b, "r", q.resource_types, q.clauses, q.compartment)
    order = [_sort_sql(b, key, "r") for key in q.sort]
    order_sql = ", ".join([s for s, _ in order] + ["r.rid"])
    sql = f"SELECT r.rid {where_sql} ORDER BY {order_sql} LIMIT ? OFFSET ?"
    params = [*where_params, *(v for _, p in order for v in p), q.count + 1, q.offset]
    return _finish(b, sql, params)


def _adaptive_page(b: _Builder, q: SearchQuery, few: Sql, guard: Sql, threshold: int) -> Sql:
    """A page led by a ``_has``: two arms, of which ``guard`` lets exactly one run. Below
    ``threshold``, ``few`` (a ``SELECT`` of every match's rid) is read whole and sorted;
    from it on, the candidates are checked one by one in rid order until the page is full.
    The guard is a condition on no row, which both engines test once before reading
    anything (a PostgreSQL one-time filter, a SQLite constant term); the LIMIT stays a
    constant, so PostgreSQL plans the walk for the page it stops at, not for every
    candidate."""
    guard_sql, guard_params = guard
    many_sql, many_params = _matching(
        b, "r", q.resource_types, q.clauses, q.compartment, rid_order_scan=True
    )
    page = [q.count + 1, q.offset]
    sql = (
        f"SELECT rid FROM (SELECT f.rid FROM ({few[0]}) f WHERE {guard_sql} < ? "
        f"ORDER BY f.rid LIMIT ? OFFSET ?) few "
        f"UNION ALL SELECT rid FROM (SELECT r.rid {many_sql} AND {guard_sql} >= ? "
        f"ORDER BY r.rid LIMIT ? OFFSET ?) many ORDER BY 1"
    )
    params = [
        *few[1], *guard_params, threshold, *page,
        *many_params, *guard_params, threshold, *page,
    ]  # fmt: skip
    return sql, params


def search_count_sql(
    q: SearchQuery, dialect: Dialect, *, restrict: Restrict | None = None,
    limit: int | None = None,
) -> Sql:
    """``SELECT COUNT(*)`` of every match of ``q`` (``_total=accurate``), or with ``limit``
    of at most that many matches (``_total=estimate``: a count that stops early, so a
    common code in millions of rows costs no more than ``limit`` index probes)."""
    b = _Builder(dialect, restrict)
    keyed = _keyed_matches(b, q) or _index_only_matches(b, q)
    if keyed is not None:
        matches_sql, matches_params = keyed
    else:
        where_sql, where_params = _matching(b, "r", q.resource_types, q.clauses, q.compartment)
        matches_sql, matches_params = f"SELECT 1 {where_sql}", where_params
    if limit is None:
        return _finish(b, f"SELECT COUNT(*) FROM ({matches_sql}) counted", matches_params)
    return _finish(
        b,
        f"SELECT COUNT(*) FROM ({matches_sql} LIMIT ?) bounded",
        [*matches_params, limit],
    )


def _index_only_matches(b: _Builder, q: SearchQuery) -> Sql | None:
    """``SELECT DISTINCT rid``: every match of a search of one plain value clause
    (``Condition?code=x``), from its index table alone; None for other searches.

    Index rows exist only for live current versions and carry their type, so with no access
    restriction the matches need no visit to ``resources``: a page is the first rids of the
    clause's rows (PostgreSQL either walks ``idx_*_rid`` in rid order or sorts the rows of
    the value, whichever reads less), and a count counts them. Joined to ``resources``, a
    code in a few thousand Conditions cost a table row read per match before the page could
    be cut. Under a restriction that can be tested on index rows (:func:`_row_restriction`)
    it is tested on the clause's rows instead: ``idx_token_lookup`` holds ``patient_key``,
    so a clinician's count of a common code reads the index alone, where joined to
    ``resources`` it read a table row per candidate to learn its compartment (5,660 for a
    common Observation code, ×1.3 the unrestricted search)."""
    if q.compartment is not None or len(q.clauses) != 1:
        return None
    c = q.clauses[0]
    if not _plain(c):
        return None
    types = q.resource_types or _all_types(())
    if b.restrict is None:
        found = _index_only_rids(b, c, "r", types)
    else:
        found = _restricted_index_rids(b, c, types)
    if found is None:
        return None
    return f"SELECT DISTINCT i.rid FROM ({found[0]}) i", found[1]


def _row_restriction(b: _Builder, s: str, types: Sequence[str]) -> Sql | None:
    """The access restriction tested on index row ``s`` (of ``types``) in place of its
    resource row; None when it cannot be. Only a restriction that says so (``index_rows``:
    access/sql.py's, whose conditions read ``rid``, ``res_type`` and ``patient_key`` and
    nothing else) qualifies; any other (a test's ``res_id NOT IN``...) keeps the join.
    Exact: the store writes an index row's rid, type and compartment from the very values
    it writes to the resource row, in the same statement batch (store/_base.py), and index
    rows exist only while that version is current and live, so the condition holds for an
    index row exactly when it holds for its resource row."""
    restrict = b.restrict
    if restrict is None or not getattr(restrict, "index_rows", False):
        return None
    narrow = getattr(restrict, "for_types", None) if types else None
    return narrow(s, types) if narrow is not None else restrict(s)


def _restricted_index_rids(b: _Builder, c: Clause, types: Sequence[str]) -> Sql | None:
    """``SELECT rid FROM idx_…`` of the rows of plain clause ``c`` that pass the access
    restriction tested on the rows themselves, or None when it cannot be."""
    types = c.resource_types or types
    table, param, body = _index_parts(b, c)
    s = b.alias("s")
    restriction = _row_restriction(b, s, types)
    if restriction is None:
        return None
    body_sql, body_params = body(s)
    type_sql, type_params = b.one_of(f"{s}.res_type", _all_types(types))
    return (
        f"SELECT {s}.rid FROM {table} {s} WHERE {type_sql} AND {s}.param = ? AND "
        f"{body_sql} AND ({restriction[0]})",
        [*type_params, param, *body_params, *restriction[1]],
    )


def _keyed_matches(b: _Builder, q: SearchQuery) -> Sql | None:
    """Every match of a search led by a ``_has`` that :func:`_keyed` accepts, as the two
    disjoint halves of :func:`_keyed_probe` (``UNION ALL``), or None for other searches.

    Read from the sources, such a count costs one reference probe per matching source
    (57,000 for a common code at ten times the load); here each matching patient costs a
    few seeks, found from the compartment keys the sources' index rows carry, and the
    sources themselves are only read in the lookup index. A bounded count stops after
    ``limit`` patients. Each half starts from its candidates (:func:`_keyed_candidates`)."""
    driver = _driver(q.clauses, q.compartment)
    if driver is None or driver < 0 or q.clauses[driver].has is None:
        return None
    c = q.clauses[driver]
    if not _keyed(c, c.resource_types or q.resource_types):
        return None
    halves: list[Sql] = []
    for half in ("own", "cross"):
        ids_sql, ids_params = _keyed_candidates(b, c, half)
        where_sql, where_params = _matching(
            b, "r", q.resource_types, q.clauses, q.compartment, keyed=half
        )
        if b.dialect == "postgresql":
            # PostgreSQL would rather read every candidate of the type and check each (it
            # cannot estimate how few the candidates are: the cross-compartment index's
            # predicate, or a code's spread over patients); a LATERAL subquery it may not
            # flatten (OFFSET 0) makes it start from them.
            halves.append((
                f"SELECT r.rid FROM ({ids_sql}) t CROSS JOIN LATERAL "
                f"(SELECT r.rid {where_sql} AND r.res_id = t.id OFFSET 0) r",
                [*ids_params, *where_params],
            ))
        else:
            # CROSS JOIN: SQLite keeps this order (the candidates, then their resources)
            halves.append((
                f"SELECT r.rid FROM ({ids_sql}) t CROSS JOIN {where_sql[len('FROM '):]} "
                f"AND r.res_id = t.id",
                [*ids_params, *where_params],
            ))
    return " UNION ALL ".join(sql for sql, _ in halves), [v for _, p in halves for v in p]


def search_estimate_sql(
    q: SearchQuery, dialect: Dialect, *, restrict: Restrict | None = None
) -> Sql:
    """The matches of ``q`` as a statement to ``EXPLAIN`` (PostgreSQL): the planner's row
    estimate from its statistics, read without running the query."""
    b = _Builder(dialect, restrict)
    where_sql, where_params = _matching(b, "r", q.resource_types, q.clauses, q.compartment)
    return _finish(b, f"EXPLAIN (FORMAT JSON) SELECT 1 {where_sql}", where_params)


def _includes_of(includes: SearchQuery | Sequence[Include], reverse: bool) -> list[Include]:
    if isinstance(includes, SearchQuery):
        return list(includes.revinclude if reverse else includes.include)
    return list(includes)


def _include_filter(b: _Builder, inc: Include, x: str, target: str, *, by_rid: bool) -> Sql:
    # by_rid: the reference rows are found by their rid; SQLite must not prefer the lookup
    # index on (res_type, param), which would scan every row of the parameter
    plus = "+" if by_rid and b.dialect == "sqlite" else ""
    conds: list[Sql] = []
    if inc.source_type != "*":
        conds.append((f"{plus}{x}.res_type = ?", [inc.source_type]))
    if inc.param != "*":
        conds.append((f"{plus}{x}.param = ?", [inc.param]))
    if inc.target_type is not None:
        conds.append((f"{target} = ?", [inc.target_type]))
    return _and(conds)


def include_sql(
    includes: SearchQuery | Sequence[Include],
    rids: Collection[int],
    dialect: Dialect,
    *,
    restrict: Restrict | None = None,
) -> Sql:
    """Rids of the resources that ``rids`` refer to through ``includes`` (``_include``).

    ``includes`` is the list to apply (or a query: its ``include``). ``:iterate`` is the
    caller's loop: run once with every include on the page's rids, then again with only the
    ``iterate`` ones on the rids the previous round added, until nothing new appears. Only
    literal references are followed (not canonical URLs). Rids come back ordered and
    distinct, and may repeat ``rids``.
    """
    incs = _includes_of(includes, reverse=False)
    b = _Builder(dialect, restrict)
    if not incs or not rids:
        return _finish(b, "SELECT rid FROM resources WHERE 1 = 0", [])
    x = b.alias("x")
    rid_sql, rid_params = b.one_of(f"{x}.rid", sorted(rids))
    which_sql, which_params = _or(
        [_include_filter(b, i, x, f"{x}.target_type", by_rid=True) for i in incs]
    )
    live_sql, live_params = b.live("r")
    sql = (
        # CROSS JOIN: SQLite keeps this join order (from the given rids outwards)
        f"SELECT DISTINCT r.rid FROM idx_reference {x} CROSS JOIN resources r "
        f"WHERE {rid_sql} AND r.res_type = {x}.target_type AND r.res_id = {x}.target_id "
        f"AND {which_sql} AND {live_sql} ORDER BY r.rid"
    )
    return _finish(b, sql, [*rid_params, *which_params, *live_params])


def revinclude_sql(
    includes: SearchQuery | Sequence[Include],
    rids: Collection[int],
    dialect: Dialect,
    *,
    restrict: Restrict | None = None,
) -> Sql:
    """Rids of the resources that refer to ``rids`` through ``includes`` (``_revinclude``).

    ``Provenance:target[:Patient]`` gives the Provenances whose ``target`` points at one of
    ``rids`` (of type Patient). ``:iterate`` works as in :func:`include_sql`.
    """
    incs = _includes_of(includes, reverse=True)
    b = _Builder(dialect, restrict)
    if not incs or not rids:
        return _finish(b, "SELECT rid FROM resources WHERE 1 = 0", [])
    p, x = b.alias("p"), b.alias("x")
    rid_sql, rid_params = b.one_of(f"{p}.rid", sorted(rids))
    which_sql, which_params = _or(
        [_include_filter(b, i, x, f"{p}.res_type", by_rid=False) for i in incs]
    )
    live_sql, live_params = b.live("r")
    sql = (
        f"SELECT DISTINCT r.rid FROM resources {p} CROSS JOIN idx_reference {x} "
        f"CROSS JOIN resources r WHERE {rid_sql} AND {x}.target_id = {p}.res_id "
        f"AND {x}.target_type = {p}.res_type AND r.rid = {x}.rid "
        f"AND {which_sql} AND {live_sql} ORDER BY r.rid"
    )
    return _finish(b, sql, [*rid_params, *which_params, *live_params])


def everything_sql(
    patient_id: str | Sequence[str],
    *,
    since_us: int | None,
    types: Sequence[str] | None,
    count: int,
    offset: int,
    dialect: Dialect,
    restrict: Restrict | None = None,
) -> Sql:
    """Rids for ``Patient/{id}/$everything`` — https://hl7.org/fhir/R4/patient-operation-everything.html.

    The Patient itself and every resource in its Patient compartment (the CompartmentDefinition
    parameters of each type), of ``types`` if given, updated at or after ``since_us`` if
    given; ordered by rid, exactly ``count`` rows from ``offset`` (ask for one more to learn
    whether a next page exists). The resources these refer to come from
    :func:`everything_referenced_sql`.
    """
    b = _Builder(dialect, restrict)
    member_sql, member_params = _member_sql(b, "Patient", patient_id, types or (), "r")
    conds = [b.live("r"), (member_sql, member_params)]
    if types:
        conds.append(b.one_of("r.res_type", list(types)))
    if since_us is not None:
        conds.append(("r.last_updated >= ?", [since_us]))
    where_sql, where_params = _and(conds)
    sql = f"SELECT r.rid FROM resources r WHERE {where_sql} ORDER BY r.rid LIMIT ? OFFSET ?"
    return _finish(b, sql, [*where_params, count, offset])


@cache
def _shared_types() -> tuple[str, ...]:
    """Types that belong to no Patient compartment (Organization, Practitioner, Medication,
    Location...): the only referenced resources ``$everything`` adds, so it never pulls in
    another patient's record."""
    members = _compartment_params("Patient")
    return tuple(sorted(t for t in resource_types() if t not in members and t != "Patient"))


def everything_referenced_sql(
    rids: Collection[int],
    dialect: Dialect,
    *,
    types: Sequence[str] | None = None,
    restrict: Restrict | None = None,
) -> Sql:
    """Rids of the resources ``rids`` refer to whose type is in no Patient compartment
    (Organization, Practitioner, Location, Medication...), for ``$everything``; of
    ``types`` if given. Ordered, distinct; may repeat ``rids``."""
    b = _Builder(dialect, restrict)
    if not rids:
        return _finish(b, "SELECT rid FROM resources WHERE 1 = 0", [])
    allowed = [t for t in _shared_types() if not types or t in types]
    x = b.alias("x")
    rid_sql, rid_params = b.one_of(f"{x}.rid", sorted(rids))
    type_sql, type_params = b.one_of(f"{x}.target_type", allowed)
    live_sql, live_params = b.live("r")
    sql = (
        f"SELECT DISTINCT r.rid FROM idx_reference {x} CROSS JOIN resources r "
        f"WHERE {rid_sql} AND r.res_type = {x}.target_type AND r.res_id = {x}.target_id "
        f"AND {type_sql} AND {live_sql} ORDER BY r.rid"
    )
    return _finish(b, sql, [*rid_params, *type_params, *live_params])
