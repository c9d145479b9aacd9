"""Every sentence the terminology service says to a person, in English and Simplified Chinese.

Messages are looked up by key so a handler never composes user-facing text ad hoc; the
rendered form joins both languages (``"English / 中文"``), which is what an
``OperationOutcome.issue.diagnostics`` or a ``Parameters.message`` carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from huitong.fhir.errors import Category, FhirError

__all__ = ["MESSAGES", "Message", "error", "message"]


@dataclass(frozen=True, slots=True)
class Message:
    en: str
    zh: str

    @property
    def text(self) -> str:
        return f"{self.en} / {self.zh}"


MESSAGES: dict[str, tuple[str, str]] = {
    "missing-param": ("Parameter '{name}' is required", "缺少必需参数“{name}”"),
    "bad-param": (
        "Parameter '{name}' must be {kind}, got {value!r}",
        "参数“{name}”应为{kind_zh}，实际为 {value!r}",
    ),
    "repeated-param": ("Parameter '{name}' may appear only once", "参数“{name}”只能出现一次"),
    "one-of": (
        "Give exactly one of {names}", "{names} 中必须且只能提供一个",
    ),
    "unknown-cs": ("Unknown code system '{url}'{ver}", "未知的代码系统“{url}”{ver}"),
    "unknown-vs": ("Unknown value set '{url}'{ver}", "未知的值集“{url}”{ver}"),
    "unknown-cm": ("Unknown concept map '{url}'", "未知的概念映射“{url}”"),
    "no-cs-content": (
        "Code system '{url}' has no concepts here (content = {content})",
        "代码系统“{url}”在本服务中没有概念内容（content = {content}）",
    ),
    "unknown-code": (
        "Unknown code '{code}' in code system '{url}'{ver}",
        "代码“{code}”不在代码系统“{url}”{ver}中",
    ),
    "system-mismatch": (
        "Coding system '{got}' does not match code system '{url}'",
        "编码系统“{got}”与代码系统“{url}”不一致",
    ),
    "bad-display": (
        "Display '{display}' is not valid for code '{code}' in '{url}'; the display is '{valid}'",
        "“{display}”不是代码“{code}”（{url}）的有效显示名，应为“{valid}”",
    ),
    "abstract-code": (
        "Code '{code}' in '{url}' is abstract and cannot be used here",
        "代码“{code}”（{url}）为抽象概念，不能在此使用",
    ),
    "inactive-code": (
        "Code '{code}' in '{url}' is inactive", "代码“{code}”（{url}）已停用",
    ),
    "not-in-vs": (
        "Code '{code}' in '{system}' is not in value set '{vs}'",
        "代码“{code}”（{system}）不在值集“{vs}”中",
    ),
    "no-coding": ("No coding was given to validate", "没有提供需要校验的编码"),
    "bad-filter-op": (
        "Filter operator '{op}' is not supported on property '{prop}'",
        "属性“{prop}”不支持过滤运算符“{op}”",
    ),
    "bad-regex": ("Invalid regular expression '{value}'", "无效的正则表达式“{value}”"),
    "vs-cycle": (
        "Value set '{url}' includes itself", "值集“{url}”循环引用了自身",
    ),
    "too-costly": (
        "The expansion has {total} concepts, more than the limit of {limit}; use count and "
        "offset to page, or a filter",
        "扩展结果有 {total} 个概念，超过上限 {limit}；请使用 count/offset 分页或 filter 过滤",
    ),
    "different-systems": (
        "codeA and codeB must be in the same code system ('{a}' and '{b}')",
        "codeA 与 codeB 必须属于同一代码系统（“{a}”与“{b}”）",
    ),
    "no-hierarchy": (
        "Code system '{url}' defines no subsumption (hierarchyMeaning '{meaning}')",
        "代码系统“{url}”未定义包含关系（hierarchyMeaning 为“{meaning}”）",
    ),
    "no-translation": (
        "No translation for '{code}' in '{system}'", "“{code}”（{system}）没有可用的映射",
    ),
    "translated": (
        "{count} translation(s) for '{code}' in '{system}'",
        "“{code}”（{system}）有 {count} 个映射结果",
    ),
    "bad-unit": ("'{unit}' is not a valid UCUM unit", "“{unit}”不是有效的 UCUM 单位"),
    "incompatible-units": (
        "Cannot convert '{source}' to '{target}'{why}",
        "无法将“{source}”换算为“{target}”{why_zh}",
    ),
    "bad-file": (
        "{file}: {problem}", "{file}：{problem_zh}",
    ),
}

_KIND_ZH = {
    "a boolean": "布尔值", "an integer": "整数", "a non-negative integer": "非负整数",
    "a string": "字符串", "a Coding": "Coding", "a CodeableConcept": "CodeableConcept",
    "a resource": "资源", "a date": "日期",
}


def message(key: str, **values: Any) -> Message:
    """The message ``key`` with ``values`` filled in, in both languages."""
    en, zh = MESSAGES[key]
    if "kind" in values:
        values.setdefault("kind_zh", _KIND_ZH.get(values["kind"], values["kind"]))
    values.setdefault("why", "")
    values.setdefault("why_zh", values["why"])
    return Message(en.format(**values), zh.format(**values))


def error(category: Category, key: str, *, expression: str | None = None,
          issue_code: str | None = None, **values: Any) -> FhirError:
    """A :class:`FhirError` whose single issue carries the bilingual message ``key``
    (``issue_code`` overrides the category's OperationOutcome issue code)."""
    return FhirError(category, message(key, **values).text, expression=expression,
                     code=issue_code)
