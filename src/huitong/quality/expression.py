"""Boolean check expressions: FHIRPath paths joined by comparisons and logic.

A check expression is FHIRPath (https://hl7.org/fhirpath/N1/) in which this module handles
the boolean and comparison layer — ``and``, ``or``, ``xor``, ``implies``, ``=``, ``!=``,
``<``, ``<=``, ``>``, ``>=``, parentheses and ``.not()`` / ``.exists()`` / ``.empty()`` /
``.count()`` on a parenthesised group — and hands every path between those operators to the
search indexer's compiler (:func:`huitong.fhir.fhirpath.compile_path`), which selects values
with ``where``, ``exists``, ``ofType``, unions and the rest of its subset. Comparisons inside
a ``where(...)`` are the indexer's (``=`` and ``!=`` only).

``%name`` is replaced by the rule parameter ``name`` before compiling, as a FHIRPath literal,
so ``value.ofType(Quantity).value <= %high`` reads the operator's tuned bound. Dates compare
as ranges (https://hl7.org/fhirpath/N1/#comparison): ``2020`` < ``2021-03`` is true,
``2020`` < ``2020-06`` is empty because the precisions overlap.

:func:`compile_check` returns a function from a resource to True, False or None (empty),
following FHIRPath's three-valued logic (https://hl7.org/fhirpath/N1/#boolean-logic).
Compile errors raise :class:`CheckSyntaxError`. The shapes rules use most — ``name.exists()``,
``status = 'final'``, ``category.coding.where(code = '…').exists()``,
``value.ofType(Quantity).unit.exists()`` — compile to direct dictionary reads that give the
same answers (a test compares them with the general path), because these run on every write.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from huitong.fhir.dates import parse_date_range
from huitong.fhir.definitions import structures
from huitong.fhir.fhirpath import FhirPathError, compile_path

__all__ = [
    "CheckSyntaxError",
    "Inline",
    "compile_check",
    "compile_inline",
    "element_shape",
    "substitute_params",
]

Node = tuple[Any, str | None]
_Eval = Callable[[Node], list[Node]]
_Truth = Callable[[Node], bool | None]

_TRUE: list[Node] = [(True, "boolean")]
_FALSE: list[Node] = [(False, "boolean")]
_DATE_TYPES = frozenset({"date", "dateTime", "instant"})


class CheckSyntaxError(ValueError):
    """A check expression that cannot be compiled."""


# The name a plan gives the single coding of a top-level element (see
# huitong.quality.predicates.InlineSource.coding), or None when the plan does not read it.
CodingNames = Callable[[str], str | None]
# ``true`` and ``false`` of an :class:`Inline` for validated input, given the plan's codings.
ValidForms = Callable[[CodingNames], tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Inline:
    """A check as Python source for a generated rule plan (:mod:`huitong.quality.plan`):
    ``true`` is an expression over the resource ``r`` (and the root node ``n = (r, type)``)
    that is true exactly when the check is true, ``false`` exactly when it is false;
    ``total`` when the check is never empty. Only shapes whose answer is certain get one.

    ``valid``, when set, gives the two for a resource that passed
    :func:`huitong.fhir.validation.validate_resource` and is made of the plain JSON types
    (what a JSON parser returns): the same answers with the type checks validation makes
    needless left out (a plan's ``run_valid``)."""

    true: str
    false: str
    total: bool
    valid: ValidForms | None = None

    def for_valid(self, codings: CodingNames) -> tuple[str, str]:
        """``(true, false)`` for validated input (``valid``, or the general forms)."""
        if self.valid is None:
            return self.true, self.false
        return self.valid(codings)


# Binds an object (a closure, a constant) to a name the generated source may use.
Binder = Callable[[Any], str]


def _fixed(true: str, false: str) -> ValidForms:
    return lambda codings: (true, false)


@lru_cache(maxsize=4096)
def element_shape(owner: str, key: str) -> tuple[str, bool] | None:
    """The FHIR type code of the JSON property ``key`` of an ``owner`` object (a type name)
    and whether it repeats, as :func:`huitong.fhir.validation.validate_resource` reads the
    definitions: None when validation refuses ``key`` there, so that a validated resource
    never holds it. A choice variant (``valueQuantity``) answers its type (``Quantity``);
    a backbone element ``BackboneElement``. Validation also guarantees that a value is
    never null, an empty string, object or array; that a repeating element is an array and
    any other one is not; that only one variant of a choice is present; and that an array
    of a primitive may hold nulls only where a ``_key`` sibling carries extensions."""
    elements = structures().get(owner.split(".", 1)[0], {}).get("elements")
    if elements is None or key.startswith("_"):
        return None
    element = elements.get(f"{owner}.{key}")
    if element is not None:
        _, max_, types, content_ref, *_ = element
        if max_ == "0" or (not types and content_ref is None):
            return None
        return ("BackboneElement" if content_ref is not None else types[0]), max_ != "1"
    for i in range(1, len(key)):
        if key[i].isupper():
            choice = elements.get(f"{owner}.{key[:i]}[x]")
            if choice is not None and choice[1] != "0":
                for code in choice[2]:
                    if code[0].upper() + code[1:] == key[i:]:
                        return code, choice[1] != "1"
    return None


def _repeating_primitive(owner: str, key: str) -> bool:
    """Whether ``key`` is an array of a primitive type, the one kind of array validation
    lets hold nulls (beside a ``_key`` sibling)."""
    shape = element_shape(owner, key)
    return shape is not None and shape[1] and shape[0][0].islower()


def _present_src(keys: tuple[str, ...], binder: Binder | None) -> str:
    """True exactly when the top-level presence fast path finds a value under ``keys``
    (``list.count(None)`` equals the length only for a list of nulls or an empty one).
    Several keys (a choice element: ``value`` is ``valueQuantity``, ``valueString``…): the
    most common one is read first, the others tested together against the resource's
    keys, one C call for the usual answer."""
    ordered = sorted(keys, key=_choice_rank)
    parts = [
        f"((_v := r.get({key!r})) is not None"
        " and (type(_v) is not list or _v.count(None) != len(_v)))"
        for key in ordered
    ]
    if not parts:
        return "False"
    if len(parts) > 2 and binder is not None:
        # The most common type first, alone: when it is there (valueQuantity on most
        # results) the others are not looked for at all.
        rest = binder(frozenset(ordered[1:]))
        return f"({parts[0]} or (not {rest}.isdisjoint(r) and ({' or '.join(parts[1:])})))"
    return "(" + " or ".join(parts) + ")"


def _present_valid(keys: tuple[str, ...], binder: Binder | None, owner: str) -> str:
    """:func:`_present_src` for validated input: a key validation refuses is never there,
    and a value is never null (nor an empty array), except the nulls a repeating
    primitive's array may hold: only those keep the full test."""
    ordered = [k for k in sorted(keys, key=_choice_rank) if element_shape(owner, k) is not None]
    full = {k for k in ordered if _repeating_primitive(owner, k)}
    parts = [
        f"((_v := r.get({key!r})) is not None and _v.count(None) != len(_v))" if key in full
        else f"(r.get({key!r}) is not None)"
        for key in ordered
    ]  # fmt: skip
    if not parts:
        return "False"
    if len(parts) > 2 and binder is not None and not full.intersection(ordered[1:]):
        # Any of the others present is any of their keys there: one C call.
        rest = binder(frozenset(ordered[1:]))
        return f"({parts[0]} or not {rest}.isdisjoint(r))"
    return "(" + " or ".join(parts) + ")"


# The types a choice element carries most often, first: ``or`` stops at the first key
# present, and the answer (any of them present) does not depend on the order.
_COMMON_CHOICES = ("Quantity", "CodeableConcept", "DateTime", "Period", "String")


def _choice_rank(key: str) -> tuple[int, str]:
    for i, suffix in enumerate(_COMMON_CHOICES):
        if key.endswith(suffix):
            return i, key
    return len(_COMMON_CHOICES), key


def _combine(op: str, a: Inline | None, b: Inline | None) -> Inline | None:
    """The three-valued logic of :func:`_logic_fn` as Python over certain answers."""
    if a is None or b is None:
        return None
    valid: ValidForms | None = None
    if a.valid is not None or b.valid is not None:

        def valid(codings: CodingNames) -> tuple[str, str]:
            x, y = a.for_valid(codings), b.for_valid(codings)
            both = _combine(op, Inline(*x, a.total), Inline(*y, b.total))
            assert both is not None
            return both.true, both.false

    combined = _combine_forms(op, a, b)
    return Inline(combined.true, combined.false, combined.total, valid)


def _combine_forms(op: str, a: Inline, b: Inline) -> Inline:
    total = a.total and b.total
    if op == "and":
        return Inline(f"({a.true} and {b.true})", f"({a.false} or {b.false})", total)
    if op == "or":
        return Inline(f"({a.true} or {b.true})", f"({a.false} and {b.false})", total)
    if op == "xor":
        return Inline(
            f"(({a.true} and {b.false}) or ({a.false} and {b.true}))",
            f"(({a.true} and {b.true}) or ({a.false} and {b.false}))",
            total,
        )
    return Inline(f"({a.false} or {b.true})", f"({a.true} and {b.false})", total)  # implies


_TOKEN_RE = re.compile(
    r"""(?P<ws>\s+)
    |(?P<str>'(?:[^'\\]|\\.)*')
    |(?P<num>\d+(?:\.\d+)?)
    |(?P<id>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)
    |(?P<var>%[A-Za-z_][A-Za-z0-9_]*|\$[a-z]+)
    |(?P<op><=|>=|!=|[.|()\[\],=<>~+\-*/&{}])""",
    re.VERBOSE | re.DOTALL,
)
# Lowest precedence first (https://hl7.org/fhirpath/N1/#operator-precedence).
_LOGIC_LEVELS: tuple[tuple[str, ...], ...] = (("implies",), ("or", "xor"), ("and",))
_LOGIC_WORDS = frozenset(w for level in _LOGIC_LEVELS for w in level)
_COMPARISONS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_GROUP_FUNCTIONS = frozenset({"not", "exists", "empty", "count"})
_CODES = frozenset({"code", "string", "uri", "id"})  # primitives held as one JSON string


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if value >= 0 else f"({value!r})"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise CheckSyntaxError(f"parameter of type {type(value).__name__} cannot appear in a path")


def substitute_params(text: str, params: Mapping[str, Any]) -> str:
    """Replace ``%name`` (outside string literals) by the literal of ``params[name]``;
    FHIRPath's own variables (``%resource``…) and unknown names are left alone."""
    out: list[str] = []
    pos = 0
    for m in _TOKEN_RE.finditer(text):
        if m.lastgroup == "var" and m.group()[1:] in params:
            out.append(text[pos : m.start()])
            out.append(_literal(params[m.group()[1:]]))
            pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def _tokenize(text: str) -> list[tuple[str, str, int, int]]:
    tokens: list[tuple[str, str, int, int]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise CheckSyntaxError(f"unexpected character {text[pos]!r} at {pos} in {text!r}")
        if m.lastgroup != "ws":
            tokens.append((m.lastgroup or "", m.group(), m.start(), m.end()))
        pos = m.end()
    tokens.append(("end", "", len(text), len(text)))
    return tokens


def _swapped(valid: ValidForms) -> ValidForms:
    def swapped(codings: CodingNames) -> tuple[str, str]:
        true, false = valid(codings)
        return false, true

    return swapped


class _X:
    """A compiled sub-expression, kept in the form it is cheapest in: a function yielding
    nodes (paths, counts) or one yielding a truth value (logic, comparisons, presence)."""

    __slots__ = ("inline", "nodes", "truth")

    def __init__(
        self, nodes: _Eval | None = None, truth: _Truth | None = None, inline: Inline | None = None
    ) -> None:
        self.nodes = nodes
        self.truth = truth
        self.inline = inline

    def as_truth(self) -> _Truth:
        if self.truth is not None:
            return self.truth
        fn = self.nodes
        assert fn is not None
        return lambda root: _truth(fn(root))

    def as_nodes(self) -> _Eval:
        if self.nodes is not None:
            return self.nodes
        fn = self.truth
        assert fn is not None

        def nodes(root: Node) -> list[Node]:
            value = fn(root)
            return [] if value is None else (_TRUE if value else _FALSE)

        return nodes


class _Parser:
    """Recursive descent over the boolean layer; path spans go to the indexer's compiler."""

    def __init__(
        self, text: str, resource_type: str | None, binder: Binder | None = None
    ) -> None:
        self.text = text
        self.resource_type = resource_type
        self.binder = binder
        self.tokens = _tokenize(text)
        self.pos = 0

    def parse(self) -> _X:
        fn = self._logic(0)
        if self.tokens[self.pos][0] != "end":
            raise CheckSyntaxError(f"unexpected {self.tokens[self.pos][1]!r} in {self.text!r}")
        return fn

    def _is_word(self, words: tuple[str, ...]) -> str | None:
        kind, value, _, _ = self.tokens[self.pos]
        return value if kind == "id" and value in words else None

    def _logic(self, level: int) -> _X:
        if level == len(_LOGIC_LEVELS):
            return self._comparison()
        left = self._logic(level + 1)
        while (op := self._is_word(_LOGIC_LEVELS[level])) is not None:
            self.pos += 1
            right = self._logic(level + 1)
            left = _X(
                truth=_logic_fn(op, left.as_truth(), right.as_truth()),
                inline=_combine(op, left.inline, right.inline),
            )
        return left

    def _comparison(self) -> _X:
        start = self.pos
        left = self._operand()
        kind, value, _, _ = self.tokens[self.pos]
        if kind == "op" and value in _COMPARISONS:
            self.pos += 1
            fast = self._member_equals_literal(start, value)
            if fast is not None:
                return _X(truth=fast[0], inline=fast[1])
            right = self._operand()
            return _X(truth=_compare_fn(value, left.as_nodes(), right.as_nodes()))
        return left

    def _member_equals_literal(self, start: int, op: str) -> tuple[_Truth, Inline] | None:
        """``status = 'final'``: a top-level primitive against a string literal, read
        straight from the resource (the common ``when`` of lifecycle rules)."""
        name, literal = self.tokens[start], self.tokens[self.pos]
        if (
            op not in ("=", "!=")
            or self.pos != start + 2
            or name[0] != "id"
            or literal[0] != "str"
            or self.tokens[self.pos + 1][1] not in ("", ")", *_LOGIC_WORDS)
            or self.resource_type is None
        ):
            return None
        try:
            compiled = compile_path(name[1], self.resource_type)
        except FhirPathError:
            return None
        if compiled.root_keys != frozenset({name[1]}) or compiled.result_type not in _CODES:
            return None
        key, expected = name[1], literal[1][1:-1]
        if "\\" in expected:
            return None  # escapes: leave them to the general path
        self.pos += 1
        negate = op == "!="

        def member_equals(root: Node) -> bool | None:
            value = root[0].get(key) if type(root[0]) is dict else None
            if type(value) is not str:
                return None
            return (value == expected) is not negate

        # Only a string equals the literal, so ``==`` alone is exact for "equal".
        equal = f"(r.get({key!r}) == {expected!r})"
        differs = f"(type(_v := r.get({key!r})) is str and _v != {expected!r})"
        # Validated, the element (a code, string, uri or id) is a string when present, or
        # an array when it repeats, which equals no literal and differs from none either.
        shape = element_shape(self.resource_type, key)
        valid_differs = (
            "False" if shape is None or shape[1]
            else f"((_v := r.get({key!r})) is not None and _v != {expected!r})"
        )  # fmt: skip
        inline = (
            Inline(differs, equal, False, _fixed(valid_differs, equal)) if negate
            else Inline(equal, differs, False, _fixed(equal, valid_differs))
        )  # fmt: skip
        return member_equals, inline

    def _operand(self) -> _X:
        kind, value, _, _ = self.tokens[self.pos]
        if kind == "op" and value == "(":
            self.pos += 1
            inner = self._logic(0)
            if self.tokens[self.pos][1] != ")":
                raise CheckSyntaxError(f"missing ')' in {self.text!r}")
            self.pos += 1
            return self._group_postfix(inner)
        return self._path()

    def _bound(self, fn: _Truth) -> Inline | None:
        """A fast path that always answers true or false, called by name from generated
        source."""
        if self.binder is None:
            return None
        name = self.binder(fn)
        return Inline(f"{name}(n)", f"(not {name}(n))", True)

    def _member_inline(self, fn: _Truth) -> Inline | None:
        """A member fast path written out for the usual shape, one object under the key:
        the closure is called only for a list (a call per rule cost more than the test on
        a Synthea Observation, which meets four of these). Anything but a list or an object
        under the key answers as no member, as the closure does."""
        shape = _MEMBERS.get(fn)
        if self.binder is None or shape is None:
            return None
        key, member, yes = shape
        name = self.binder(fn)
        # _has of the member, as _present_src writes it for a top-level key.
        has = (
            f"((_vm := _v.get({member!r})) is not None"
            " and (type(_vm) is not list or _vm.count(None) != len(_vm)))"
        )
        found = f"(type(_v) is dict and {has})"
        answer = found if yes else f"(not {found})"
        true = f"({name}(n) if type((_v := r.get({key!r}))) is list else {answer})"
        valid = self._member_valid(name, key, member, yes)
        return Inline(true, f"(not {true})", True, valid)

    def _member_valid(self, name: str, key: str, member: str, yes: bool) -> ValidForms | None:
        """The member fast path for validated input: an absent key answers as no member
        (``not yes``), an array (a repeating element) is the closure's, and one object has
        the member exactly when its key is there (the full test only for the nulls a
        repeating primitive may hold)."""
        rtype = self.resource_type
        assert rtype is not None
        shape = element_shape(rtype, key)
        if shape is None:
            return _fixed(repr(not yes), repr(yes))
        if shape[1]:
            true = f"({name}((r, {rtype!r})) if (_v := r.get({key!r})) is not None else {not yes})"
            return _fixed(true, f"(not {true})")
        if shape[0][0].islower() or shape[0] not in structures() or shape[0] in (
            "BackboneElement", "Element"
        ):
            return None  # not an object of a type the definitions name: the general forms
        if element_shape(shape[0], member) is None:
            return _fixed(repr(not yes), repr(yes))
        has = (
            f"((_vm := _v.get({member!r})) is not None and _vm.count(None) != len(_vm))"
            if _repeating_primitive(shape[0], member) else f"({member!r} in _v)"
        )  # fmt: skip
        found = f"((_v := r.get({key!r})) is not None and {has})"
        answer = found if yes else f"(not {found})"
        return _fixed(answer, f"(not {answer})")

    def _coding_inline(self, fn: _Truth) -> Inline | None:
        """The coding fast path (:func:`_coding_where`) written out for the usual shape: one
        concept (alone or the only one of a list) with one coding; the closure is called
        for any other shape (a Synthea Observation asks it twice)."""
        shape = _CODINGS.get(fn)
        if self.binder is None or shape is None:
            return None
        key, field, wanted, yes = shape
        name = self.binder(fn)
        compared = f"(_wc.get({field!r}) == {wanted!r})"
        answer = compared if yes else f"(not {compared})"
        usual = (
            f"(type(_w := r.get({key!r})) is dict"
            " or (type(_w) is list and len(_w) == 1 and type(_w := _w[0]) is dict))"
            " and type(_wc := _w.get('coding')) is list and len(_wc) == 1"
            " and type(_wc := _wc[0]) is dict"
        )
        true = f"({answer} if {usual} else {name}(n))"
        valid = self._coding_valid(name, key, field, wanted, yes)
        return Inline(true, f"(not {true})", True, valid)

    def _coding_valid(
        self, name: str, key: str, field: str, wanted: str, yes: bool
    ) -> ValidForms | None:
        """The coding fast path for validated input: every concept and coding is an object,
        so the usual shape is a matter of lengths; an absent element answers ``not yes``
        as the closure does; and a plan that already holds the element's single coding
        (``_c0``) compares it without reading the concept again."""
        rtype = self.resource_type
        assert rtype is not None
        shape = element_shape(rtype, key)
        if shape is None:
            return _fixed(repr(not yes), repr(yes))
        if shape[0] != "CodeableConcept":
            return None

        def answer(value: str) -> str:
            compared = f"({value} == {wanted!r})"
            return compared if yes else f"(not {compared})"

        concept = "_w[0]" if shape[1] else "_w"
        one = " and len(_w) == 1" if shape[1] else ""
        general = (
            f"({answer(f'_wc[0].get({field!r})')} if (_w := r.get({key!r})) is not None{one}"
            f" and len(_wc := {concept}.get('coding', ())) == 1"
            f" else {not yes} if _w is None else {name}((r, {rtype!r})))"
        )
        index = 0 if field == "system" else 1

        def valid(codings: CodingNames) -> tuple[str, str]:
            single = None if shape[1] else codings(key)
            true = (
                general if single is None
                else f"({answer(f'{single}[{index}]')} if {single} is not None else {general})"
            )  # fmt: skip
            return true, f"(not {true})"

        return valid

    def _group_postfix(self, fn: _X) -> _X:
        while (
            self.tokens[self.pos][1] == "."
            and self.tokens[self.pos + 1][1] in _GROUP_FUNCTIONS
            and self.tokens[self.pos + 2][1] == "("
            and self.tokens[self.pos + 3][1] == ")"
        ):
            name = self.tokens[self.pos + 1][1]
            inline = fn.inline
            fn = _group_function(name, fn)
            if name == "not" and inline is not None:
                valid = inline.valid
                fn.inline = Inline(
                    inline.false, inline.true, inline.total,
                    None if valid is None else _swapped(valid),
                )  # fmt: skip
            self.pos += 4
        return fn

    def _path(self) -> _X:
        start = self.pos
        depth = 0
        while True:
            kind, value, _, _ = self.tokens[self.pos]
            if kind == "end":
                break
            if depth == 0:
                if kind == "op" and (value in _COMPARISONS or value == ")"):
                    break
                if kind == "id" and value in _LOGIC_WORDS and self.tokens[self.pos - 1][1] != ".":
                    break
            if value in ("(", "["):
                depth += 1
            elif value in (")", "]"):
                depth -= 1
            self.pos += 1
        if self.pos == start:
            raise CheckSyntaxError(f"expected a path or literal at {start} in {self.text!r}")
        source = self.text[self.tokens[start][2] : self.tokens[self.pos - 1][3]]
        presence = _top_level_presence(source, self.resource_type)
        if presence is not None:
            fn, keys, yes = presence
            present = _present_src(keys, self.binder)
            absent = f"(not {present})"
            assert self.resource_type is not None  # a presence shape needs the type
            here = _present_valid(keys, self.binder, self.resource_type)
            valid = _fixed(here, f"(not {here})") if yes else _fixed(f"(not {here})", here)
            inline = (
                Inline(present, absent, True, valid) if yes
                else Inline(absent, present, True, valid)
            )  # fmt: skip
            return _X(truth=fn, inline=inline)
        fast = _fast_path(source, self.resource_type)
        if fast is not None:
            inline = self._member_inline(fast) or self._coding_inline(fast) or self._bound(fast)
            return _X(truth=fast, inline=inline)
        try:
            compiled = compile_path(source, self.resource_type)
        except FhirPathError as exc:
            raise CheckSyntaxError(str(exc)) from exc
        if compiled.never_matches:
            return _X(nodes=lambda root: [])
        evaluate = compiled.evaluate
        return _X(nodes=lambda root: evaluate([root], root))


_PRESENCE_RE = re.compile(
    r"([a-z][A-Za-z0-9]*(?:\.ofType\([A-Z][A-Za-z]*\))?)\.(exists|empty)\(\)"
)


def _top_level_presence(
    source: str, resource_type: str | None
) -> tuple[_Truth, tuple[str, ...], bool] | None:
    """``name.exists()`` / ``name.empty()`` on a top-level element (or one type of a choice
    element, ``value.ofType(Quantity).exists()``), as dictionary lookups.

    The most common check there is; the keys come from the indexer's compiler
    (``root_keys``: ``effective`` -> ``effectiveDateTime``, ``effectivePeriod``…), and a
    value counts as present exactly when the compiler would yield a node for it.
    """
    m = _PRESENCE_RE.fullmatch(source)
    if m is None or resource_type is None:
        return None
    try:
        keys = compile_path(m.group(1), resource_type).root_keys
    except FhirPathError:
        return None
    if keys is None:
        return None
    ordered = tuple(sorted(keys))
    yes = m.group(2) == "exists"
    no = not yes

    def presence(root: Node) -> bool | None:
        resource = root[0]
        if type(resource) is dict:
            get = resource.get
            for key in ordered:
                value = get(key)
                if value is not None and (
                    type(value) is not list or any(v is not None for v in value)
                ):
                    return yes
        return no

    # The keys read and whether "exists" was asked, so a plan can read them inline.
    return presence, ordered, yes


_CODING_RE = re.compile(
    r"([a-z][A-Za-z0-9]*)\.coding\.where\((system|code) = '([^'\\]*)'\)\.(exists|empty)\(\)"
)
_CHOICE_MEMBER_RE = re.compile(
    r"([a-z][A-Za-z0-9]*)\.ofType\(([A-Z][A-Za-z]*)\)\.([a-z][A-Za-z0-9]*)\.(exists|empty)\(\)"
)


def _fast_path(source: str, resource_type: str | None) -> _Truth | None:
    """Direct dictionary walks for the shapes rules use most, or None to compile normally.

    Each shortcut is taken only when the indexer's compiler confirms the element's type, so
    it answers exactly what the general path would (a test compares them).
    """
    if resource_type is None:
        return None
    return (
        _coding_where(source, resource_type)
        or _choice_member(source, resource_type)
        or _element_member(source, resource_type)
    )


# The member fast paths (:func:`_choice_member`, :func:`_element_member`) by closure: the
# key they read, its member and whether they answer "exists", so a plan can write the usual
# shape (one object, not a list) out inline (:meth:`_Parser._member_inline`).
_MEMBERS: weakref.WeakKeyDictionary[Any, tuple[str, str, bool]] = weakref.WeakKeyDictionary()
# The coding fast paths (:func:`_coding_where`) by closure: element, field, literal and
# whether they answer "exists", for :meth:`_Parser._coding_inline`.
_CODINGS: weakref.WeakKeyDictionary[Any, tuple[str, str, str, bool]] = (
    weakref.WeakKeyDictionary()
)


def _has(value: Any) -> bool:
    return value is not None and (type(value) is not list or any(v is not None for v in value))


def _coding_where(source: str, resource_type: str) -> _Truth | None:
    """``concept.coding.where(system = 'x').exists()`` (or ``code``) on a top-level
    CodeableConcept, repeating or not."""
    m = _CODING_RE.fullmatch(source)
    if m is None:
        return None
    name, field, wanted, function = m.groups()
    try:
        compiled = compile_path(name, resource_type)
    except FhirPathError:
        return None
    if compiled.result_type != "CodeableConcept" or compiled.root_keys != frozenset({name}):
        return None
    yes = function == "exists"

    def coding_where(root: Node) -> bool | None:
        resource = root[0]
        value = resource.get(name) if type(resource) is dict else None
        for concept in value if type(value) is list else (value,):
            if type(concept) is dict:
                codings = concept.get("coding")
                for coding in codings if type(codings) is list else (codings,):
                    if type(coding) is dict and coding.get(field) == wanted:
                        return yes
        return not yes

    _CODINGS[coding_where] = (name, field, wanted, yes)
    return coding_where


def _choice_member(source: str, resource_type: str) -> _Truth | None:
    """``value.ofType(Quantity).unit.exists()``: one member of one type of a top-level
    choice element."""
    m = _CHOICE_MEMBER_RE.fullmatch(source)
    if m is None:
        return None
    name, type_name, member, function = m.groups()
    key = name + type_name
    try:
        narrowed = compile_path(f"{name}.ofType({type_name})", resource_type)
        inner = compile_path(member, type_name)
    except FhirPathError:
        return None
    if narrowed.root_keys != frozenset({key}) or narrowed.result_type != type_name:
        return None
    if inner.root_keys != frozenset({member}) or inner.result_type is None:
        return None
    yes = function == "exists"

    def choice_member(root: Node) -> bool | None:
        resource = root[0]
        value = resource.get(key) if type(resource) is dict else None
        for item in value if type(value) is list else (value,):
            if type(item) is dict and _has(item.get(member)):
                return yes
        return not yes

    _MEMBERS[choice_member] = (key, member, yes)
    return choice_member


_MEMBER_RE = re.compile(r"([a-z][A-Za-z0-9]*)\.([a-z][A-Za-z0-9]*)\.(exists|empty)\(\)")


def _element_member(source: str, resource_type: str) -> _Truth | None:
    """``period.start.exists()``: one member of a top-level element of a complex type
    (repeating or not), as :func:`_choice_member` reads a choice's."""
    m = _MEMBER_RE.fullmatch(source)
    if m is None:
        return None
    name, member, function = m.groups()
    try:
        outer = compile_path(name, resource_type)
        if outer.root_keys != frozenset({name}) or outer.result_type is None:
            return None
        inner = compile_path(member, outer.result_type)
    except FhirPathError:
        return None
    if inner.root_keys != frozenset({member}) or inner.result_type is None:
        return None
    yes = function == "exists"

    def element_member(root: Node) -> bool | None:
        resource = root[0]
        value = resource.get(name) if type(resource) is dict else None
        for item in value if type(value) is list else (value,):
            if type(item) is dict and _has(item.get(member)):
                return yes
        return not yes

    _MEMBERS[element_member] = (name, member, yes)
    return element_member


def _truth(nodes: list[Node]) -> bool | None:
    if len(nodes) != 1:
        return None
    value = nodes[0][0]
    return value if type(value) is bool else True


def _logic_fn(op: str, left: _Truth, right: _Truth) -> _Truth:
    if op == "and":

        def and_(root: Node) -> bool | None:
            a = left(root)
            if a is False:
                return False
            b = right(root)
            if b is False:
                return False
            return True if a and b else None

        return and_
    if op == "or":

        def or_(root: Node) -> bool | None:
            a = left(root)
            if a is True:
                return True
            b = right(root)
            if b is True:
                return True
            return False if a is False and b is False else None

        return or_
    if op == "xor":

        def xor(root: Node) -> bool | None:
            a, b = left(root), right(root)
            return None if a is None or b is None else a != b

        return xor

    def implies(root: Node) -> bool | None:
        a = left(root)
        if a is False:
            return True
        b = right(root)
        if b is True:
            return True
        return False if a is True and b is False else None

    return implies


def _group_function(name: str, fn: _X) -> _X:
    if name in ("exists", "empty"):
        nodes = fn.as_nodes()
        if name == "exists":
            return _X(truth=lambda root: bool(nodes(root)))
        return _X(truth=lambda root: not nodes(root))
    if name == "count":
        counted = fn.as_nodes()
        return _X(nodes=lambda root: [(len(counted(root)), "integer")])
    truth = fn.as_truth()

    def not_(root: Node) -> bool | None:
        value = truth(root)
        return None if value is None else not value

    return _X(truth=not_)


@lru_cache(maxsize=1024)
def _date_range(text: str) -> tuple[int, int] | None:
    try:
        return parse_date_range(text)
    except ValueError:
        return None


def _order(a: Node, b: Node) -> int | None:
    """-1, 0 or 1 when ``a`` and ``b`` are comparable and ordered; None when they are not
    (different kinds, or date ranges that overlap)."""
    (x, xt), (y, yt) = a, b
    if xt in _DATE_TYPES or yt in _DATE_TYPES:
        if not (isinstance(x, str) and isinstance(y, str)):
            return None
        rx, ry = _date_range(x), _date_range(y)
        if rx is None or ry is None:
            return None
        if rx == ry:
            return 0
        if rx[1] < ry[0]:
            return -1
        if ry[1] < rx[0]:
            return 1
        return None
    if type(x) is bool or type(y) is bool:
        return (0 if x == y else None) if type(x) is type(y) else None
    if isinstance(x, int | float) and isinstance(y, int | float):
        return (x > y) - (x < y)
    if isinstance(x, str) and isinstance(y, str):
        return (x > y) - (x < y)
    return None


def _compare_fn(op: str, left: _Eval, right: _Eval) -> _Truth:
    if op in ("=", "!="):
        negate = op == "!="

        def equals(root: Node) -> bool | None:
            a, b = left(root), right(root)
            if not a or not b:
                return None
            same = len(a) == len(b) and all(_order(x, y) == 0 for x, y in zip(a, b, strict=True))
            return same != negate

        return equals
    accept = {"<": (-1,), "<=": (-1, 0), ">": (1,), ">=": (1, 0)}[op]

    def ordered(root: Node) -> bool | None:
        a, b = left(root), right(root)
        if len(a) != 1 or len(b) != 1:
            return None
        order = _order(a[0], b[0])
        if order is None:
            return None
        return order in accept

    return ordered


def compile_check(
    text: str, resource_type: str | None, params: Mapping[str, Any] | None = None
) -> Callable[[Mapping[str, Any]], bool | None]:
    """Compile a check expression for resources of ``resource_type``.

    The result maps a resource (parsed JSON) to True, False or None (the expression was
    empty: nothing to check). Raises :class:`CheckSyntaxError` for expressions outside the
    language, including paths the indexer's FHIRPath subset does not support.
    """
    return compile_inline(text, resource_type, params)[0]


def compile_inline(
    text: str,
    resource_type: str | None,
    params: Mapping[str, Any] | None = None,
    binder: Binder | None = None,
) -> tuple[Callable[[Mapping[str, Any]], bool | None], Inline | None]:
    """:func:`compile_check`, and the check as Python source when its shape allows (see
    :class:`Inline`; None otherwise). ``binder`` names the closures that source may call."""
    compiled = _Parser(substitute_params(text, params or {}), resource_type, binder).parse()
    fn = compiled.as_truth()
    rtype = resource_type

    def check(resource: Mapping[str, Any]) -> bool | None:
        return fn((resource, rtype))

    return check, compiled.inline
