"""Data quality: rules as data, an engine that checks one resource, scores and reports.

The write pipeline builds a :class:`RuleSet` once (the shipped library, as the region's
configuration tunes it), calls :func:`assess` on every resource with a
:class:`QualityContext`, fails the write on :func:`rejection_error`, and keeps the
assessment's findings and applicable-check counts for :mod:`huitong.quality.scores`.
"""

from huitong.quality.catalogue import render_rule_catalogue
from huitong.quality.config import (
    ConfigProblem,
    QualityConfig,
    QualityConfigError,
    load_config_file,
    parse_config,
)
from huitong.quality.context import InMemoryContext, QualityContext, RecordedSex, Subject
from huitong.quality.engine import assess, evaluate, finding_issues, rejection_error
from huitong.quality.library import default_rules
from huitong.quality.model import (
    Assessment,
    Category,
    ExpressionCheck,
    Finding,
    Outcome,
    PredicateCheck,
    Rule,
    Severity,
)
from huitong.quality.predicates import Facts, predicate
from huitong.quality.report import (
    REPORT_FORMATS,
    render_csv,
    render_html,
    render_json,
    render_report,
    report_to_json,
)
from huitong.quality.ruleset import RuleSet
from huitong.quality.scores import (
    CheckCount,
    MonthScore,
    QualityReport,
    RuleScore,
    Score,
    Tally,
    build_report,
    count_checks,
    month_of,
)

__all__ = [
    "REPORT_FORMATS",
    "Assessment",
    "Category",
    "CheckCount",
    "ConfigProblem",
    "ExpressionCheck",
    "Facts",
    "Finding",
    "InMemoryContext",
    "MonthScore",
    "Outcome",
    "PredicateCheck",
    "QualityConfig",
    "QualityConfigError",
    "QualityContext",
    "QualityReport",
    "RecordedSex",
    "Rule",
    "RuleScore",
    "RuleSet",
    "Score",
    "Severity",
    "Subject",
    "Tally",
    "assess",
    "build_report",
    "count_checks",
    "default_rules",
    "evaluate",
    "finding_issues",
    "load_config_file",
    "month_of",
    "parse_config",
    "predicate",
    "rejection_error",
    "render_csv",
    "render_html",
    "render_json",
    "render_report",
    "render_rule_catalogue",
    "report_to_json",
]
