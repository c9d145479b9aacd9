"""A region's quality configuration: which rules run, how severe, with which parameters.

The document is JSON or TOML (the same shape in both)::

    version = 1
    region = "demo"

    [categories.timeliness]          # every rule of a category
    enabled = false

    [rules."observation.systolic-in-range"]
    severity = "reject"
    params = { low = 50, high = 280 }

    [rules."patient.contact-details-present"]
    enabled = false

    [institutions."Organization/hospital-1"]  # when its feed went live (see below)
    live_since = "2024-07-01"

    [custom."observation.performer-present"]   # a region's own rule, no code needed
    category = "completeness"
    severity = "warn"
    resource_types = ["Observation"]
    expect = "performer.exists()"
    when = "status = 'final'"
    message_en = "A final Observation names no performer."
    message_zh = "已完成的 Observation 未注明执行者。"

An institution's ``live_since`` (a FHIR date or dateTime; a date without a zone counts from
its first instant, UTC) replaces, for the timeliness rules, the moment its data first
reached Huitong: events that ended before it are its history (a backfill) and are not
judged unless a rule's ``judge_backfill`` parameter is true. A rule's own entry wins over
its category's. Parameters must already exist on the rule and
keep their kind (a number stays a number, a code list a list of strings). Custom rules are
check expressions (:mod:`huitong.quality.expression`) validated here: their expressions must
compile for every resource type they name. Every problem is
reported at once, in English and Chinese, by :class:`QualityConfigError`. Nothing here reads
the environment: the caller loads the file (:func:`load_config_file`) and passes the
document on.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huitong.fhir.dates import parse_date_range
from huitong.fhir.definitions import resource_types
from huitong.quality.expression import CheckSyntaxError, compile_check
from huitong.quality.model import Category, ExpressionCheck, ParamValue, Rule, Severity

__all__ = [
    "ConfigProblem",
    "QualityConfig",
    "QualityConfigError",
    "RuleOverride",
    "load_config_file",
    "parse_config",
]

_TOP_KEYS = frozenset({"version", "region", "categories", "rules", "custom", "institutions"})
_INSTITUTION_KEYS = frozenset({"live_since"})
_CUSTOM_REQUIRED = ("category", "severity", "resource_types", "expect", "message_en", "message_zh")
_CUSTOM_KEYS = frozenset({*_CUSTOM_REQUIRED, "when", "expression", "params", "enabled"})
_OVERRIDE_KEYS = frozenset({"enabled", "severity", "params"})
_SEVERITIES = {s.value: s for s in Severity}
_CATEGORIES = {c.value: c for c in Category}


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a configuration; ``path`` locates it (``rules.x.params.low``)."""

    path: str
    message_en: str
    message_zh: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message_en} / {self.message_zh}"


class QualityConfigError(ValueError):
    """A configuration that cannot be applied; ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def message_en(self) -> str:
        return "\n".join(f"{p.path}: {p.message_en}" for p in self.problems)

    @property
    def message_zh(self) -> str:
        return "\n".join(f"{p.path}：{p.message_zh}" for p in self.problems)


@dataclass(frozen=True, slots=True)
class RuleOverride:
    """What a configuration changes about one rule or one category (None: unchanged)."""

    enabled: bool | None = None
    severity: Severity | None = None
    params: Mapping[str, ParamValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QualityConfig:
    """A validated configuration document."""

    region: str | None = None
    categories: Mapping[Category, RuleOverride] = field(default_factory=dict)
    rules: Mapping[str, RuleOverride] = field(default_factory=dict)
    custom: tuple[Rule, ...] = ()  # the region's own declarative rules
    # Institution ("Organization/<id>" or "unknown") → when its feed went live, µs (UTC):
    # set by the operator, it replaces the moment its data first reached Huitong.
    live_since: Mapping[str, int] = field(default_factory=dict)

    def apply(self, rule: Rule) -> Rule:
        """``rule`` as this configuration has it."""
        enabled, severity, params = rule.enabled, rule.severity, dict(rule.params)
        for override in (self.categories.get(rule.category), self.rules.get(rule.id)):
            if override is None:
                continue
            if override.enabled is not None:
                enabled = override.enabled
            if override.severity is not None:
                severity = override.severity
            params.update(override.params)
        if (enabled, severity, params) == (rule.enabled, rule.severity, dict(rule.params)):
            return rule
        return Rule(
            rule.id,
            rule.category,
            severity,
            rule.resource_types,
            rule.message_en,
            rule.message_zh,
            rule.check,
            params,
            enabled,
        )


def load_config_file(path: str | Path) -> Mapping[str, Any]:
    """Read a configuration document from a ``.json`` or ``.toml`` file (not validated)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text)
        document = json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise QualityConfigError(
            [ConfigProblem(str(path), f"cannot be parsed: {exc}", f"无法解析：{exc}")]
        ) from exc
    if not isinstance(document, dict):
        raise QualityConfigError(
            [ConfigProblem(str(path), "must be an object", "必须是一个对象（键值表）")]
        )
    return document


def parse_config(document: Mapping[str, Any], rules: Iterable[Rule]) -> QualityConfig:
    """Validate ``document`` against the known ``rules``; raise :class:`QualityConfigError`
    listing every problem, or return the :class:`QualityConfig`."""
    known = {r.id: r for r in rules}
    problems: list[ConfigProblem] = []
    for key in sorted(set(document) - _TOP_KEYS):
        problems.append(ConfigProblem(key, "unknown setting", "未知的设置项"))
    version = document.get("version", 1)
    if version != 1:
        problems.append(
            ConfigProblem(
                "version", f"unsupported version {version!r} (expected 1)",
                f"不支持的版本 {version!r}（应为 1）",
            )
        )  # fmt: skip
    region = document.get("region")
    if region is not None and not isinstance(region, str):
        problems.append(ConfigProblem("region", "must be text", "必须是文本"))
        region = None

    categories: dict[Category, RuleOverride] = {}
    for name, entry in _table(document, "categories", problems).items():
        category = _CATEGORIES.get(name)
        if category is None:
            problems.append(
                ConfigProblem(
                    f"categories.{name}",
                    f"unknown category (expected one of {', '.join(_CATEGORIES)})",
                    f"未知的类别（应为 {'、'.join(_CATEGORIES)} 之一）",
                )
            )
            continue
        override = _override(f"categories.{name}", entry, None, problems)
        if override is not None:
            categories[category] = override

    custom: list[Rule] = []
    for rule_id, entry in _table(document, "custom", problems).items():
        if rule_id in known:
            problems.append(
                ConfigProblem(f"custom.{rule_id}", "a rule with this id already exists",
                              "已存在同名规则")
            )  # fmt: skip
            continue
        made = _custom_rule(f"custom.{rule_id}", rule_id, entry, problems)
        if made is not None:
            custom.append(made)
            known[rule_id] = made

    overrides: dict[str, RuleOverride] = {}
    for rule_id, entry in _table(document, "rules", problems).items():
        rule = known.get(rule_id)
        if rule is None:
            problems.append(ConfigProblem(f"rules.{rule_id}", "unknown rule", "未知的规则"))
            continue
        override = _override(f"rules.{rule_id}", entry, rule, problems)
        if override is not None:
            overrides[rule_id] = override

    live_since = _institutions(_table(document, "institutions", problems), problems)

    if problems:
        raise QualityConfigError(problems)
    return QualityConfig(region, categories, overrides, tuple(custom), live_since)


def _institutions(entries: Mapping[str, Any], problems: list[ConfigProblem]) -> dict[str, int]:
    """Each institution's ``live_since`` as microseconds (the first instant of the date)."""
    out: dict[str, int] = {}
    for org, entry in entries.items():
        path = f"institutions.{org}"
        rid = org.removeprefix("Organization/")
        if org != "unknown" and (rid == org or not rid or "/" in rid):
            problems.append(
                ConfigProblem(path, 'must be "Organization/<id>" or "unknown"',
                              '必须是 "Organization/<id>" 或 "unknown"')
            )  # fmt: skip
            continue
        if not isinstance(entry, dict):
            problems.append(ConfigProblem(path, "must be a table of settings", "必须是键值表"))
            continue
        for key in sorted(set(entry) - _INSTITUTION_KEYS):
            problems.append(ConfigProblem(f"{path}.{key}", "unknown setting", "未知的设置项"))
        if "live_since" not in entry:
            continue
        value = entry["live_since"]
        try:
            # TOML has dates of its own; JSON and the API send text.
            out[org] = parse_date_range(value if isinstance(value, str) else value.isoformat())[0]
        except (AttributeError, ValueError):
            problems.append(
                ConfigProblem(f"{path}.live_since", "must be a date (YYYY-MM-DD) or dateTime",
                              "必须是日期（YYYY-MM-DD）或日期时间")
            )  # fmt: skip
    return out


def _custom_rule(path: str, rule_id: str, entry: Any, problems: list[ConfigProblem]) -> Rule | None:
    """A region's own expression rule, checked as far as it can be before it runs: known
    category, severity and resource types, and expressions that compile for each type."""
    if not isinstance(entry, dict):
        problems.append(ConfigProblem(path, "must be a table of settings", "必须是键值表"))
        return None
    before = len(problems)
    for key in sorted(set(entry) - _CUSTOM_KEYS):
        problems.append(ConfigProblem(f"{path}.{key}", "unknown setting", "未知的设置项"))
    for key in _CUSTOM_REQUIRED:
        if key not in entry:
            problems.append(ConfigProblem(f"{path}.{key}", "is required", "为必填项"))
    for key in ("expect", "when", "expression", "message_en", "message_zh"):
        if key in entry and not (isinstance(entry[key], str) and entry[key].strip()):
            problems.append(
                ConfigProblem(f"{path}.{key}", "must be non-empty text", "必须是非空文本")
            )
    category = _CATEGORIES.get(entry.get("category"))  # type: ignore[arg-type]
    if "category" in entry and category is None:
        problems.append(
            ConfigProblem(f"{path}.category", f"must be one of {', '.join(_CATEGORIES)}",
                          f"应为 {'、'.join(_CATEGORIES)} 之一")
        )  # fmt: skip
    severity = _SEVERITIES.get(entry.get("severity"))  # type: ignore[arg-type]
    if "severity" in entry and severity is None:
        problems.append(
            ConfigProblem(f"{path}.severity", 'must be "reject" or "warn"',
                          '必须是 "reject" 或 "warn"')
        )  # fmt: skip
    types = entry.get("resource_types")
    known_types = resource_types()
    if "resource_types" in entry and not (
        isinstance(types, list) and types and all(t in known_types for t in types)
    ):
        problems.append(
            ConfigProblem(f"{path}.resource_types", "must list FHIR R4 resource types",
                          "必须列出 FHIR R4 资源类型")
        )  # fmt: skip
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(
            ConfigProblem(f"{path}.enabled", "must be true or false", "必须是 true 或 false")
        )
    params = entry.get("params", {})
    if not isinstance(params, dict) or not all(
        _coerce(v, v) is not None and not isinstance(v, list | tuple) for v in params.values()
    ):
        problems.append(
            ConfigProblem(f"{path}.params", "must map names to numbers, text or true/false",
                          "必须是从名称到数字、文本或 true/false 的映射")
        )  # fmt: skip
        params = {}
    if len(problems) > before:
        return None
    checked_types: list[str] = list(entry["resource_types"])
    for key in ("expect", "when"):
        if key not in entry:
            continue
        for rtype in checked_types:
            try:
                compile_check(entry[key], rtype, params)
            except CheckSyntaxError as exc:
                problems.append(
                    ConfigProblem(f"{path}.{key}", f"does not compile for {rtype}: {exc}",
                                  f"无法针对 {rtype} 编译：{exc}")
                )  # fmt: skip
                return None
    assert category is not None and severity is not None
    return Rule(
        rule_id,
        category,
        severity,
        tuple(checked_types),
        entry["message_en"],
        entry["message_zh"],
        ExpressionCheck(entry["expect"], entry.get("when"), entry.get("expression")),
        params,
        enabled,
    )


def _table(
    document: Mapping[str, Any], key: str, problems: list[ConfigProblem]
) -> Mapping[str, Any]:
    value = document.get(key, {})
    if not isinstance(value, dict):
        problems.append(ConfigProblem(key, "must be a table of entries", "必须是键值表"))
        return {}
    return value


def _override(
    path: str, entry: Any, rule: Rule | None, problems: list[ConfigProblem]
) -> RuleOverride | None:
    if not isinstance(entry, dict):
        problems.append(ConfigProblem(path, "must be a table of settings", "必须是键值表"))
        return None
    before = len(problems)
    allowed = _OVERRIDE_KEYS if rule is not None else _OVERRIDE_KEYS - {"params"}
    for key in sorted(set(entry) - allowed):
        problems.append(ConfigProblem(f"{path}.{key}", "unknown setting", "未知的设置项"))
    enabled = entry.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        problems.append(
            ConfigProblem(f"{path}.enabled", "must be true or false", "必须是 true 或 false")
        )
    severity_text = entry.get("severity")
    severity = _SEVERITIES.get(severity_text) if isinstance(severity_text, str) else None
    if severity_text is not None and severity is None:
        problems.append(
            ConfigProblem(
                f"{path}.severity", 'must be "reject" or "warn"', '必须是 "reject" 或 "warn"'
            )
        )
    params: dict[str, ParamValue] = {}
    if rule is not None and "params" in entry:
        params = _params(f"{path}.params", entry["params"], rule, problems)
    if len(problems) > before:
        return None
    return RuleOverride(enabled, severity, params)


def _params(
    path: str, given: Any, rule: Rule, problems: list[ConfigProblem]
) -> dict[str, ParamValue]:
    if not isinstance(given, dict):
        problems.append(ConfigProblem(path, "must be a table of values", "必须是键值表"))
        return {}
    out: dict[str, ParamValue] = {}
    for name, value in given.items():
        where = f"{path}.{name}"
        if name not in rule.params:
            names = ", ".join(rule.params) or "none"
            problems.append(
                ConfigProblem(
                    where, f"the rule has no such parameter (it has: {names})",
                    f"该规则没有此参数（可用参数：{names}）",
                )
            )  # fmt: skip
            continue
        coerced = _coerce(value, rule.params[name])
        if coerced is None:
            kind_en, kind_zh = _kind(rule.params[name])
            problems.append(ConfigProblem(where, f"must be {kind_en}", f"必须是{kind_zh}"))
            continue
        out[name] = coerced
    merged = {**rule.params, **out}
    low, high = merged.get("low"), merged.get("high")
    if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
        problems.append(
            ConfigProblem(path, f"low ({low}) is above high ({high})",
                          f"下限（{low}）高于上限（{high}）")
        )  # fmt: skip
    return out


def _coerce(value: Any, default: ParamValue) -> ParamValue | None:
    if isinstance(default, bool):
        return value if isinstance(value, bool) else None
    if isinstance(default, int | float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return value
    if isinstance(default, str):
        return value if isinstance(value, str) and value else None
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _kind(default: ParamValue) -> tuple[str, str]:
    if isinstance(default, bool):
        return "true or false", " true 或 false"
    if isinstance(default, int | float):
        return "a number", "数字"
    if isinstance(default, str):
        return "non-empty text", "非空文本"
    return "a list of text values", "文本列表"
