"""A compiled, ready-to-run selection of rules: the shipped library as a region configures it.

Building a :class:`RuleSet` compiles every enabled rule once (expressions parsed with their
parameters substituted, predicates looked up by name and given their parameters) and
compiles the rules of each resource type into one :class:`~huitong.quality.plan.TypePlan`,
so evaluating a resource runs one generated function for its type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from huitong.quality.config import QualityConfig, parse_config
from huitong.quality.expression import CheckSyntaxError, Inline, compile_inline

# Importing the library registers the shipped predicates, so rules naming them compile
# whichever module a caller imported first.
from huitong.quality.library import default_rules
from huitong.quality.model import ExpressionCheck, Outcome, Rule, format_message
from huitong.quality.plan import Namespace, TypePlan
from huitong.quality.predicates import (
    Facts,
    Inliner,
    Predicate,
    Runner,
    plain_predicate,
    predicate_gate,
    predicate_inliner,
    predicate_runner,
)

__all__ = ["CompiledRule", "RuleSet", "TypeRules"]

_Run = Callable[[Mapping[str, Any], Facts], Outcome | None]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready to run: ``when`` (None: always applies) gates ``run``; ``gate`` is the
    ``(system, codes)`` a code-gated predicate needs to see on the resource."""

    rule: Rule
    when: Callable[[Mapping[str, Any]], bool | None] | None
    run: _Run
    gate: tuple[str, frozenset[str]] | None = None
    # The messages with the rule's parameters already filled; what a failing check
    # reports (``{value}``…) is filled per finding.
    message_en: str = ""
    message_zh: str = ""
    # For the generated plan: ``when`` as source, and either the expression check (its
    # closure, its source, the Outcome of a failure) or the predicate with its parameters.
    when_inline: Inline | None = None
    expect: Callable[[Mapping[str, Any]], bool | None] | None = None
    expect_inline: Inline | None = None
    failed: Outcome | None = None
    predicate: Runner | None = None
    # A predicate that takes its parameters on every call, called so by the plan.
    plain: tuple[Predicate, Mapping[str, Any]] | None = None
    # A factory's check the plan writes inline (huitong.quality.predicates.InlineSource),
    # with the rule's parameters.
    inline: tuple[Inliner, Mapping[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class TypeRules:
    """The enabled rules of one resource type: ``plain`` run on every resource, ``gated``
    maps ``(system, code)`` to the rules that need that code (library order kept)."""

    plain: tuple[CompiledRule, ...]
    gated: Mapping[tuple[str, str], tuple[CompiledRule, ...]]
    every: tuple[CompiledRule, ...]  # plain and gated, in library order
    plan: TypePlan


_NO_RULES = TypeRules((), {}, (), TypePlan("", (), Namespace()))


def _compile(rule: Rule, resource_type: str, namespace: Namespace | None = None) -> CompiledRule:
    check = rule.check
    binder = namespace.bind if namespace is not None else None
    when, when_inline = (
        compile_inline(check.when, resource_type, rule.params, binder) if check.when
        else (None, None)
    )  # fmt: skip
    if isinstance(check, ExpressionCheck):
        expect, expect_inline = compile_inline(check.expect, resource_type, rule.params, binder)
        failed = Outcome(False, check.expression or resource_type)
        passed = Outcome(True)

        def run_expression(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
            result = expect(resource)
            return None if result is None else (passed if result else failed)

        return CompiledRule(
            rule, when, run_expression, None, *_messages(rule), when_inline=when_inline,
            expect=expect, expect_inline=expect_inline, failed=failed,
        )  # fmt: skip
    params = rule.params
    gate_spec = predicate_gate(check.name)
    gate = None
    if gate_spec is not None:
        codes = params.get(gate_spec[1])
        if not isinstance(codes, tuple):
            raise ValueError(f"rule {rule.id}: parameter {gate_spec[1]!r} must list codes")
        gate = (gate_spec[0], frozenset(codes))
    try:
        runner = predicate_runner(check.name, params)
    except (TypeError, KeyError) as exc:  # a factory read a parameter that is not there
        raise ValueError(f"rule {rule.id}: {exc}") from exc
    if runner is None:
        raise ValueError(f"rule {rule.id}: no predicate registered as {check.name!r}")
    fn = plain_predicate(check.name)
    inliner = predicate_inliner(check.name)
    return CompiledRule(
        rule, when, runner, gate, *_messages(rule), when_inline=when_inline, predicate=runner,
        plain=(fn, params) if fn is not None else None,
        inline=(inliner, params) if inliner is not None else None,
    )  # fmt: skip


def _messages(rule: Rule) -> tuple[str, str]:
    return format_message(rule.message_en, rule.params), format_message(
        rule.message_zh, rule.params
    )


def _index(rtype: str, compiled: list[CompiledRule], namespace: Namespace) -> TypeRules:
    plain = tuple(c for c in compiled if c.gate is None)
    gated: dict[tuple[str, str], list[CompiledRule]] = {}
    for c in compiled:
        if c.gate is not None:
            for code in sorted(c.gate[1]):
                gated.setdefault((c.gate[0], code), []).append(c)
    return TypeRules(
        plain, {k: tuple(v) for k, v in gated.items()}, tuple(compiled),
        TypePlan(rtype, compiled, namespace),
    )  # fmt: skip


class RuleSet:
    """Rules to evaluate, compiled and indexed by resource type.

    ``rules`` holds every rule as configured (disabled ones too, so a report can list them);
    only enabled rules are compiled and run. Raises ValueError when a rule's expression does
    not compile or names an unregistered predicate, or when two rules share an id.
    """

    __slots__ = ("_by_id", "_by_type", "live_since", "region", "rules")

    def __init__(
        self, rules: Iterable[Rule], region: str | None = None,
        live_since: Mapping[str, int] | None = None,
    ) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.region = region
        # Go-live moments the region document sets, by institution (see QualityConfig).
        self.live_since: Mapping[str, int] = dict(live_since or {})
        self._by_id: dict[str, Rule] = {}
        by_type: dict[str, list[CompiledRule]] = {}
        namespaces: dict[str, Namespace] = {}
        for rule in self.rules:
            if rule.id in self._by_id:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            self._by_id[rule.id] = rule
            if not rule.enabled:
                continue
            for rtype in rule.resource_types:
                namespace = namespaces.setdefault(rtype, Namespace())
                try:
                    compiled = _compile(rule, rtype, namespace)
                except CheckSyntaxError as exc:
                    raise ValueError(f"rule {rule.id}: {exc}") from exc
                by_type.setdefault(rtype, []).append(compiled)
        self._by_type = {t: _index(t, rs, namespaces[t]) for t, rs in by_type.items()}

    @classmethod
    def default(cls) -> RuleSet:
        """The shipped library with its defaults: built once per process (a rule set does
        not change once built, and compiling its plans takes about a fifth of a second, which
        every app and service created would pay again)."""
        if cls is not RuleSet:
            return cls(default_rules())
        return _shipped()

    @classmethod
    def from_config(
        cls, document: Mapping[str, Any] | QualityConfig, rules: Iterable[Rule] | None = None
    ) -> RuleSet:
        """``rules`` (default: the shipped library) as configured by ``document`` (a parsed
        JSON/TOML mapping, validated here, or a :class:`QualityConfig`). Raises
        :class:`~huitong.quality.config.QualityConfigError` for an invalid document."""
        if rules is None:
            rules = default_rules()
        rules = tuple(rules)
        config = document if isinstance(document, QualityConfig) else parse_config(document, rules)
        return cls((config.apply(r) for r in (*rules, *config.custom)), region=config.region,
                   live_since=config.live_since)

    def for_type(self, resource_type: str) -> TypeRules:
        """The enabled rules for one resource type."""
        return self._by_type.get(resource_type, _NO_RULES)

    @property
    def checked_types(self) -> frozenset[str]:
        """The resource types at least one enabled rule checks."""
        return frozenset(self._by_type)

    def plan(self, resource_type: str) -> TypePlan | None:
        """The compiled plan of one resource type (None: no enabled rule for it)."""
        rules = self._by_type.get(resource_type)
        return rules.plan if rules is not None else None

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (KeyError when there is none)."""
        return self._by_id[rule_id]

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._by_id

    def __len__(self) -> int:
        return len(self.rules)


@cache
def _shipped() -> RuleSet:
    return RuleSet(default_rules())
