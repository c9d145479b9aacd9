"""The rules of one resource type compiled into one Python function.

Checking a resource used to walk a list of rules, calling each rule's ``when``, its check
and, inside that, the check's own closures, and building an :class:`Outcome` for every
answer. That generic dispatch cost more than the checks themselves (a Synthea Observation
meets about 25 rules). A :class:`TypePlan` is built once per rule set and resource type:
its ``run(resource, facts)`` is generated source in which

- the shapes rules use most are plain Python over the resource (top-level presence,
  ``status = 'final'``, their ``and``/``or``/``not``; see
  :class:`~huitong.quality.expression.Inline`);
- the time predicates are written out too (their ``inline`` form, see
  :class:`~huitong.quality.predicates.InlineSource`), each element's time read once per
  resource and shared by the rules that compare it;
- every other check is called directly, predicates with their parameters already applied
  (:func:`~huitong.quality.predicates.predicate_runner`);
- code-gated rules run only when one of their codes is on the resource (one test for a
  run of them when none is);
- what several rules read is read once per resource, at the top: a key read more than once
  (:func:`_hoist_reads`), the element times (their usual shapes written out, the reader
  called for the rest) and the one coding of ``code`` (:meth:`InlineSource.coding`, which
  the code gate, the coded-element and sex rules and the lab-unit check share); the bits of
  rules that apply to every resource start in the mask;

and which returns ``(mask, failures)``: bit *i* of ``mask`` set when rule *i* (library
order) applied, ``failures`` None or a list of ``(i, Outcome)``. The generated source only
ever holds Python literals made with ``repr`` and names this module binds, so a region's
custom expression cannot inject code. :meth:`TypePlan.run_reference` answers the same by
walking the rules one by one (non-dict input, and the tests that compare the two).
"""

from __future__ import annotations

import io
import tokenize
from ast import literal_eval
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from huitong.quality.model import Outcome, Severity, message_formatter
from huitong.quality.predicates import (
    _CHOICE_SUFFIXES,
    Facts,
    InlineSource,
    _date_range,
    _period,
    time_reader,
)

if TYPE_CHECKING:
    from huitong.quality.ruleset import CompiledRule

__all__ = ["Namespace", "RunResult", "TypePlan"]

RunResult = tuple[int, list[tuple[int, Outcome]] | None]
_MESSAGE_CACHE_SIZE = 1024


class Namespace:
    """Names for the objects a plan's source uses (closures, constants)."""

    __slots__ = ("_ids", "names")

    def __init__(self) -> None:
        self.names: dict[str, Any] = {}
        self._ids: dict[int, str] = {}

    def bind(self, obj: Any) -> str:
        name = self._ids.get(id(obj))
        if name is None:
            name = self._ids[id(obj)] = f"_b{len(self.names)}"
            self.names[name] = obj
        return name


_NOTHING_GATED: tuple[int, ...] = ()


def _gate_table(rules: Sequence[CompiledRule]) -> dict[tuple[str, str], tuple[int, ...]]:
    """``(system, code)`` → the indices of the code-gated rules that need that code."""
    gated: dict[tuple[str, str], list[int]] = {}
    for i, c in enumerate(rules):
        if c.gate is not None:
            for code in sorted(c.gate[1]):
                gated.setdefault((c.gate[0], code), []).append(i)
    return {key: tuple(v) for key, v in gated.items()}


def _gate_function(
    rules: Sequence[CompiledRule],
) -> Callable[[Mapping[str, Any]], Collection[int]] | None:
    """A function from a resource to the indices of its code-gated rules whose codes appear
    in ``code`` or a ``component.code`` (None when the type has no gated rule)."""
    table = _gate_table(rules)
    if not table:
        return None

    def gate(resource: Mapping[str, Any]) -> Collection[int]:
        concept = resource.get("code")
        if "component" not in resource and type(concept) is dict:
            # The usual shape (every Synthea Observation but the panels): one coding, no
            # components. The general loop below, spelled out: the indices of that one
            # coding's rules as the table holds them, no set built.
            codings = concept.get("coding")
            if type(codings) is list and len(codings) == 1:
                coding = codings[0]
                if type(coding) is not dict:
                    return _NOTHING_GATED
                system, code = coding.get("system"), coding.get("code")
                # The table holds strings only: anything else (a list is not even
                # hashable) matches none of its codes.
                if not (isinstance(system, str) and isinstance(code, str)):
                    return _NOTHING_GATED
                return table.get((system, code), _NOTHING_GATED)
        found: set[int] = set()
        concepts = [concept]
        components = resource.get("component")
        if type(components) is list:
            concepts.extend(c.get("code") for c in components if type(c) is dict)
        for concept in concepts:
            codings = concept.get("coding") if type(concept) is dict else None
            if type(codings) is not list:
                continue
            for coding in codings:
                if type(coding) is dict:
                    system, code = coding.get("system"), coding.get("code")
                    if not (isinstance(system, str) and isinstance(code, str)):
                        continue
                    items = table.get((system, code))
                    if items:
                        found.update(items)
        return found

    return gate


def _hoist_reads(source: str, ns: Namespace) -> str:
    """``source`` with every ``r.get('key')`` of a key read more than once replaced by a
    local read once at the top of ``run``.

    The rules of a type read the same few elements again and again (a Synthea Observation's
    plan asked for ``valueQuantity`` eight times, ``status`` four), and each read was a
    method call. Reading a key of a dict has no effect and cannot raise, so reading it
    earlier answers the same. The keys of a choice element tested together
    (``_present_src``: ``valueBoolean``, ``valueString``…, behind one ``isdisjoint``) are
    left where they are unless read three times or more: most of them are never reached
    (the most common one is read first, outside that test, and hoisted like any other).
    Found by tokens, so a string literal that looks like such a read stays as written.
    """
    guarded: set[str] = set()
    for obj in ns.names.values():
        if type(obj) is frozenset:
            guarded.update(k for k in obj if type(k) is str)
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    # (row, start col, end col, key) of each `r.get('<literal>')`, not `x.r.get(...)`.
    reads: list[tuple[int, int, int, str]] = []
    for i in range(1, len(tokens) - 5):
        t = tokens[i]
        if (
            t.type == tokenize.NAME and t.string == "r"
            and tokens[i - 1].string != "."
            and [x.string for x in (tokens[i + 1], tokens[i + 2], tokens[i + 3])]
            == [".", "get", "("]
            and tokens[i + 4].type == tokenize.STRING
            and tokens[i + 5].string == ")"
            and t.start[0] == tokens[i + 5].end[0]
        ):
            key = literal_eval(tokens[i + 4].string)
            if type(key) is str:
                reads.append((t.start[0], t.start[1], tokens[i + 5].end[1], key))
    counts: dict[str, int] = {}
    for *_, key in reads:
        counts[key] = counts.get(key, 0) + 1
    names: dict[str, str] = {}
    for key, count in counts.items():
        if count >= (3 if key in guarded else 2):
            names[key] = f"_r{len(names)}"
    if not names:
        return source
    lines = source.split("\n")
    for row, start, end, key in sorted(reads, reverse=True):
        name = names.get(key)
        if name is not None:
            line = lines[row - 1]
            lines[row - 1] = line[:start] + name + line[end:]
    assert lines[0] == "def run(r, facts):"
    lines[1:1] = [f"    {name} = r.get({key!r})" for key, name in names.items()]
    return "\n".join(lines)


class TypePlan:
    """The enabled rules of one resource type (library order) and their generated check."""

    __slots__ = ("_applicable", "_fill", "_gate", "_indices", "_messages", "_reject", "heads",
                 "ids", "reject", "resource_type", "rules", "run", "source")  # fmt: skip

    def __init__(
        self, resource_type: str, rules: Sequence[CompiledRule], namespace: Namespace
    ) -> None:
        self.resource_type = resource_type
        self.rules: tuple[CompiledRule, ...] = tuple(rules)
        self.ids: tuple[str, ...] = tuple(c.rule.id for c in self.rules)
        # What every finding row of rule i starts with: id, category, severity.
        self.heads: tuple[tuple[str, str, str], ...] = tuple(
            (c.rule.id, c.rule.category.value, c.rule.severity.value) for c in self.rules
        )
        self._reject = frozenset(
            i for i, c in enumerate(self.rules) if c.rule.severity is Severity.REJECT
        )
        # Whether any rule of the type rejects (most failures are warnings: nothing to ask).
        self.reject = bool(self._reject)
        self._indices: dict[int, tuple[int, ...]] = {}
        self._gate = _gate_function(self.rules)
        self._applicable: dict[int, tuple[str, ...]] = {}
        self._messages: dict[Any, tuple[str, str]] = {}
        # Each rule's two message templates, parsed once (model.message_formatter).
        self._fill = tuple(
            (message_formatter(c.message_en), message_formatter(c.message_zh))
            for c in self.rules
        )
        self.source = self._generate(namespace)
        scope: dict[str, Any] = dict(namespace.names)
        exec(compile(self.source, f"<quality plan {resource_type}>", "exec"), scope)
        self.run: Callable[[Mapping[str, Any], Facts], RunResult] = scope["run"]

    def _generate(self, ns: Namespace) -> str:
        fail = "fails = [] if fails is None else fails; fails.append(({i}, {o}))"
        out = [
            "def run(r, facts):",
            f"    n = (r, {self.resource_type!r})",
            "    mask = 0",
            "    fails = None",
        ]
        always = 0  # the bits of the rules that apply to every resource
        # Element times the inline checks read: computed once, before the first rule
        # (element_time is pure; Facts remembers each, so closures asking again share it).
        times: dict[str, str] = {}
        # The single codings they read (InlineSource.coding), likewise.
        codings: dict[str, str] = {}
        head = len(out)
        if self._gate is not None:
            # The gate's usual shape (no components, one coding of strings) written out: a
            # lookup in its table without the call; anything else is the gate's to answer.
            single = InlineSource(ns.bind, times, codings).coding("code")
            out += [
                f"    if {single} is not None and 'component' not in r:",
                f"        found = {ns.bind(_gate_table(self.rules))}.get({single}, ())",
                "    else:",
                f"        found = {ns.bind(self._gate)}(r)",
            ]
        in_gated = False
        for i, c in enumerate(self.rules):
            pad = "    "
            if c.gate is not None:
                # A run of code-gated rules (the physiological ranges) is one test when the
                # resource carries none of their codes, the usual case.
                if not in_gated:
                    out.append("    if found:")
                    in_gated = True
                pad += "    "
            else:
                in_gated = False
            conditions = []
            if c.gate is not None:
                conditions.append(f"{i} in found")
            if c.when is not None:
                conditions.append(
                    c.when_inline.true if c.when_inline is not None
                    else f"{ns.bind(c.when)}(r) is True"
                )  # fmt: skip
            out.append(f"{pad}# {c.rule.id!r}")
            if conditions:
                out.append(f"{pad}if {' and '.join(conditions)}:")
                pad += "    "
            bit = 1 << i
            if c.expect is not None:
                failed = ns.bind(c.failed)
                if c.expect_inline is not None and c.expect_inline.total:
                    if conditions:
                        out.append(f"{pad}mask |= {bit}")
                    else:
                        # Applies to every resource: its bit is in the mask from the start
                        # (one operation on a large int less per rule).
                        always |= bit
                    out += [
                        f"{pad}if not {c.expect_inline.true}:",
                        f"{pad}    " + fail.format(i=i, o=failed),
                    ]
                else:
                    out += [
                        f"{pad}x = {ns.bind(c.expect)}(r)",
                        f"{pad}if x is not None:",
                        f"{pad}    mask |= {bit}",
                        f"{pad}    if not x:",
                        f"{pad}        " + fail.format(i=i, o=failed),
                    ]
            else:
                if c.inline is not None:
                    source = InlineSource(ns.bind, times, codings)
                    c.inline[0](c.inline[1], source)
                    out += [pad + line for line in source.lines]
                else:
                    call = (
                        f"{ns.bind(c.plain[0])}(r, facts, {ns.bind(c.plain[1])})" if c.plain
                        else f"{ns.bind(c.predicate)}(r, facts)"
                    )  # fmt: skip
                    out.append(f"{pad}o = {call}")
                out += [
                    f"{pad}if o is not None:",
                    f"{pad}    mask |= {bit}",
                    f"{pad}    if not o.passed:",
                    f"{pad}        " + fail.format(i=i, o="o"),
                ]
        # Each time read by its own reader (no dispatch on the spec per resource) and kept
        # in the resource's Facts, where a check called later (facts.time) finds it.
        reading = []
        for key, name in codings.items():
            reading += [
                f"    if (type(_x := r.get({key!r})) is dict"
                " and type(_xl := _x.get('coding')) is list and len(_xl) == 1"
                " and type(_x := _xl[0]) is dict and type(_xs := _x.get('system')) is str"
                " and type(_xk := _x.get('code')) is str):",
                f"        {name} = (_xs, _xk)",
                "    else:",
                f"        {name} = None",
            ]
        if times:
            reading.append("    _ts = facts.times")
            for spec, name in times.items():
                # The reader's usual answers written out: the element, or (when absent)
                # its dateTime choice, or the member of a nested spec, a string the fast
                # parser reads. Anything else (a Period, another choice, an odd value, an
                # unparsable string) is the reader's.
                reader, parse = ns.bind(time_reader(spec)), ns.bind(_date_range)
                if "." in spec:
                    head_key, sub = spec.split(".", 1)
                    reading += [
                        f"    if (type(_x := r.get({head_key!r})) is dict"
                        f" and type(_x := _x.get({sub!r})) is str"
                        f" and (_xb := {parse}(_x)) is not None):",
                        f"        {name} = ({spec!r}, _xb[0], _xb[1])",
                        "    else:",
                        f"        {name} = {reader}(r)",
                        f"    _ts[{spec!r}] = {name}",
                    ]
                    continue
                # (the order the reader tries the choices in, which the branches follow)
                assert _CHOICE_SUFFIXES == ("DateTime", "Instant", "Date", "Period")
                choice = spec + "DateTime"
                reading += [
                    f"    if type(_x := r.get({spec!r})) is str"
                    f" and (_xb := {parse}(_x)) is not None:",
                    f"        {name} = ({spec!r}, _xb[0], _xb[1])",
                    f"    elif _x is None and type(_x := r.get({choice!r})) is str"
                    f" and (_xb := {parse}(_x)) is not None:",
                    f"        {name} = ({choice!r}, _xb[0], _xb[1])",
                    # Its Period choice (a procedure's performedPeriod), the other choices
                    # the reader looks at before it absent.
                    f"    elif (_x is None and r.get({spec + 'Instant'!r}) is None"
                    f" and r.get({spec + 'Date'!r}) is None"
                    f" and type(_x := r.get({spec + 'Period'!r})) is dict):",
                    f"        {name} = {ns.bind(_period)}({spec + 'Period'!r}, _x)",
                    "    else:",
                    f"        {name} = {reader}(r)",
                    f"    _ts[{spec!r}] = {name}",
                ]
        out[head:head] = reading
        assert out[2] == "    mask = 0"
        out[2] = f"    mask = {always}"
        out.append("    return mask, fails")
        return _hoist_reads("\n".join(out) + "\n", ns)

    def evaluate(self, resource: Mapping[str, Any], facts: Facts) -> RunResult:
        """``(mask, failures)`` for ``resource`` (generated code for a dict, the rule by
        rule walk for any other mapping)."""
        if type(resource) is dict:
            return self.run(resource, facts)
        return self.run_reference(resource, facts)

    def run_reference(self, resource: Mapping[str, Any], facts: Facts) -> RunResult:
        """The same answer as :attr:`run`, one rule at a time through the rules' closures."""
        mask = 0
        fails: list[tuple[int, Outcome]] | None = None
        found = self._gate(resource) if self._gate is not None else set()
        for i, c in enumerate(self.rules):
            if c.gate is not None and i not in found:
                continue
            if c.when is not None and c.when(resource) is not True:
                continue
            outcome = c.run(resource, facts)
            if outcome is None:
                continue
            mask |= 1 << i
            if not outcome.passed:
                fails = fails or []
                fails.append((i, outcome))
        return mask, fails

    def rejects(self, failures: Sequence[tuple[int, Outcome]]) -> bool:
        """Whether any of ``failures`` is of a rule that rejects."""
        reject = self._reject
        if reject:
            for i, _ in failures:
                if i in reject:
                    return True
        return False

    def indices(self, mask: int) -> tuple[int, ...]:
        """The rule indices whose bits are set in ``mask``."""
        found = self._indices.get(mask)
        if found is None:
            found = tuple(i for i in range(len(self.rules)) if mask >> i & 1)
            if len(self._indices) < _MESSAGE_CACHE_SIZE:
                self._indices[mask] = found
        return found

    def mask_of(self, rule_ids: Sequence[str]) -> int:
        """The mask of the rules named (ids this plan does not have are left out)."""
        wanted = set(rule_ids)
        return sum(1 << i for i, rule_id in enumerate(self.ids) if rule_id in wanted)

    def applicable(self, mask: int) -> tuple[str, ...]:
        """The ids of the rules whose bits are set, in library order (cached per mask: a
        type's resources mostly share a handful of masks)."""
        found = self._applicable.get(mask)
        if found is None:
            found = tuple(rule_id for i, rule_id in enumerate(self.ids) if mask >> i & 1)
            if len(self._applicable) < _MESSAGE_CACHE_SIZE:
                self._applicable[mask] = found
        return found

    def messages(self, i: int, outcome: Outcome) -> tuple[str, str]:
        """Rule ``i``'s English and Chinese messages filled with what ``outcome`` reports
        (remembered per rule and values: a late result's delay repeats across a bundle)."""
        c = self.rules[i]
        values = outcome.values
        if not values:
            return c.message_en, c.message_zh
        key: Any = None
        if len(values) == 1:
            ((name, value),) = values.items()
            # Only exact ints and strings: True == 1 and 1.0 == 1 would share an entry.
            if type(value) is int or type(value) is str:
                key = (i, name, value)
                found = self._messages.get(key)
                if found is not None:
                    return found
        fill_en, fill_zh = self._fill[i]
        found = (fill_en(values), fill_zh(values))
        if key is not None:
            if len(self._messages) >= _MESSAGE_CACHE_SIZE:
                self._messages.clear()
            self._messages[key] = found
        return found
