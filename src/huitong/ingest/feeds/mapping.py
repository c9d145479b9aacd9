"""The declarative feed mapping: a TOML file (https://toml.io/en/v1.0.0, read with the standard
library's ``tomllib``) that says how one institution's CSV or JSON export becomes FHIR.

::

    [feed]
    name = "community-bp"                       # shown to operators
    organization = { system = "urn:huitong:org-code", value = "C01" }   # or "Organization/123"
    encoding = "auto"        # auto (UTF-8, with or without BOM, else GB18030) | utf-8 | gb18030 ...
    delimiter = "auto"       # one character, or auto (sniffed from the header line)
    batch_size = 500         # records per transaction Bundle
    timezone = "+08:00"      # offset of date-times written without one
    records = "data.items"   # JSON only: where the records are when the file is one object

    [[resource]]
    key = "patient"                             # how other resources of the row refer to it
    type = "Patient"
    mode = "update"          # PUT Type?identifier=… (latest wins); default create: ifNoneExist
    identifier = { system = "urn:huitong:mrn:C01", value = "{病历号}" }   # the record's identity
    only_if = "病历号"        # optional: build this resource only when the column is not empty
    # for_each = "tests"     # JSON: one resource per item of this array; sources "item.code",
    #                        # "item.value" read the item, "item#" is its 1-based number

      [[resource.field]]
      element = "name[0].text"                  # FHIR element path, checked against R4
      source = "姓名"                            # CSV column, or dotted path in a JSON record
      required = true

      [[resource.field]]
      element = "gender"
      source = "性别"
      map = { "男" = "male", "女" = "female" }   # code translation (values may be tables too)
      default = "unknown"                        # used for values not in the map

      [[resource.field]]
      element = "birthDate"                      # type inferred from the element: date
      source = "出生日期"
      formats = ["%Y年%m月%d日", "%Y-%m-%d"]      # strptime formats (defaults cover the usual)

A field has exactly one of ``source`` (a value from the record), ``value`` (a constant of any
TOML type), ``template`` (a string with ``{column}`` placeholders) or ``target``/
``target_identifier`` (a reference). ``type`` defaults from the element's FHIR type: string,
integer, decimal, boolean, date, dateTime, quantity (with ``unit`` or ``unit_source`` and
``unit_map``, UCUM) or reference (``target = "<key>"`` or ``"organization"``, or
``target_identifier = {type, system, value}``, a conditional reference resolved by the server).
The resource's identity becomes ``identifier[0]``; further identifiers start at ``[1]``.

:func:`parse_mapping` checks everything (resource types, element paths, keys, references,
formats) and raises one :class:`MappingError` listing every issue in English and Chinese.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timezone
from pathlib import Path
from typing import Any

from huitong.fhir.definitions import resource_types, structures
from huitong.ingest.feeds.elements import ElementPath, PathError, resolve_path
from huitong.ingest.feeds.transaction import Mode, conditional_reference
from huitong.ingest.feeds.transforms import parse_offset

__all__ = [
    "FeedMapping",
    "FieldSpec",
    "MappingError",
    "MappingIssue",
    "ResourceSpec",
    "Template",
    "load_mapping",
    "parse_mapping",
    "parse_mapping_toml",
]

ENCODINGS = ("auto", "utf-8", "utf-8-sig", "gb18030", "gbk", "gb2312")
KINDS = ("string", "integer", "decimal", "boolean", "date", "dateTime", "quantity", "reference")
_KIND_OF_TYPE = {
    "integer": "integer", "positiveInt": "integer", "unsignedInt": "integer",
    "decimal": "decimal", "boolean": "boolean", "date": "date", "dateTime": "dateTime",
    "instant": "dateTime", "Quantity": "quantity", "Reference": "reference",
}
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_FEED_KEYS = {"name", "organization", "encoding", "delimiter", "batch_size", "timezone",
              "records"}
_RESOURCE_KEYS = {"key", "type", "mode", "identifier", "only_if", "for_each", "field"}
_FIELD_KEYS = {
    "element", "source", "value", "template", "type", "required", "map", "default", "formats",
    "unit", "unit_source", "unit_map", "target", "target_identifier",
}


@dataclass(frozen=True, slots=True)
class MappingIssue:
    """One problem in a mapping file: ``where`` is a path like ``resource[1].field[0].element``."""

    where: str
    en: str
    zh: str


class MappingError(ValueError):
    """A mapping file that cannot be used, with every issue found."""

    def __init__(self, issues: list[MappingIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(f"{i.where}: {i.en}" for i in issues))

    @property
    def message_zh(self) -> str:
        return "；".join(f"{i.where}：{i.zh}" for i in self.issues)


@dataclass(frozen=True, slots=True)
class Template:
    """A string with ``{source}`` placeholders (``{{``/``}}`` for braces)."""

    text: str
    parts: tuple[tuple[str, str | None], ...]  # (literal, source or None)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(s for _, s in self.parts if s is not None)

    @classmethod
    def parse(cls, text: str) -> Template:
        parts = []
        for literal, name, spec, conv in string.Formatter().parse(text):
            if spec or conv:
                raise ValueError("format specs and conversions are not supported")
            if name == "":
                raise ValueError("empty {} placeholder")
            parts.append((literal, name))
        return cls(text, tuple(parts))


@dataclass(frozen=True, slots=True)
class FieldSpec:
    where: str
    element: ElementPath
    kind: str  # one of KINDS, or "constant" / "template" / "mapped"
    source: str | None = None
    value: Any = None
    template: Template | None = None
    required: bool = False
    map: Mapping[str, Any] | None = None
    default: Any = None
    formats: tuple[str, ...] | None = None
    unit: str | None = None
    unit_source: str | None = None
    unit_map: Mapping[str, str] | None = None
    target: str | None = None
    target_type: str | None = None
    target_system: str | None = None
    target_value: Template | None = None


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    key: str
    type: str
    mode: Mode
    system: str
    value: Template
    only_if: str | None
    fields: tuple[FieldSpec, ...]
    for_each: str | None = None  # JSON: one resource per item of this array


@dataclass(frozen=True, slots=True)
class FeedMapping:
    """A checked mapping: the institution's ``organization`` reference, the source options and
    the resources each record becomes, in order."""

    name: str
    organization: str
    encoding: str
    delimiter: str
    batch_size: int
    timezone: timezone
    resources: tuple[ResourceSpec, ...]
    records: str | None = None  # JSON only: dotted path of the record array in an object


class _Checker:
    def __init__(self) -> None:
        self.issues: list[MappingIssue] = []

    def issue(self, where: str, en: str, zh: str) -> None:
        self.issues.append(MappingIssue(where, en, zh))

    def unknown(self, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for k in table:
            if k not in allowed:
                self.issue(f"{where}.{k}", f"unknown setting {k!r} (allowed: "
                           f"{', '.join(sorted(allowed))})", f"未知设置项 {k!r}")

    def text(self, table: Mapping[str, Any], name: str, where: str, *, required: bool = True
             ) -> str | None:
        value = table.get(name)
        if value is None:
            if required:
                self.issue(f"{where}.{name}", "is required", "为必填项")
            return None
        if not isinstance(value, str) or not value.strip():
            self.issue(f"{where}.{name}", "must be a non-empty string", "必须是非空字符串")
            return None
        return value

    def template(self, text: str | None, where: str) -> Template | None:
        if text is None:
            return None
        try:
            return Template.parse(text)
        except ValueError as exc:
            self.issue(where, f"bad template: {exc}", "模板格式错误（占位符写作 {列名}）")
            return None


def _organization(c: _Checker, feed: Mapping[str, Any]) -> str:
    org = feed.get("organization")
    if isinstance(org, Mapping):
        system, value = org.get("system"), org.get("value")
        if isinstance(system, str) and system and isinstance(value, str) and value:
            return conditional_reference("Organization", system, value)
    elif isinstance(org, str) and re.fullmatch(r"Organization(/[A-Za-z0-9\-.]{1,64}|\?.+)", org):
        return org
    c.issue("feed.organization",
            "must be 'Organization/<id>', 'Organization?identifier=…' or {system, value}",
            "必须是 'Organization/<id>'、'Organization?identifier=…' 或 {system, value}")
    return ""


def _feed(c: _Checker, feed: Any) -> dict[str, Any]:
    if not isinstance(feed, Mapping):
        c.issue("feed", "a [feed] table is required", "缺少 [feed] 表")
        feed = {}
    c.unknown(feed, _FEED_KEYS, "feed")
    out: dict[str, Any] = {"name": c.text(feed, "name", "feed") or "",
                           "organization": _organization(c, feed)}
    encoding = str(feed.get("encoding", "auto")).lower()
    if encoding not in ENCODINGS:
        c.issue("feed.encoding", f"must be one of {', '.join(ENCODINGS)}",
                f"必须是以下之一：{'、'.join(ENCODINGS)}")
    delimiter = feed.get("delimiter", "auto")
    if not isinstance(delimiter, str) or (delimiter != "auto" and len(delimiter) != 1) \
            or delimiter in ('"', "\r", "\n"):
        c.issue("feed.delimiter", "must be one character or 'auto'", "必须是单个字符或 'auto'")
    batch = feed.get("batch_size", 500)
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 10_000:
        c.issue("feed.batch_size", "must be an integer from 1 to 10000", "必须是 1 到 10000 的整数")
        batch = 500
    tz = UTC
    try:
        tz = parse_offset(str(feed.get("timezone", "+08:00")))
    except ValueError:
        c.issue("feed.timezone", "must be a UTC offset like +08:00", "必须是形如 +08:00 的时区偏移")
    records = feed.get("records")
    if records is not None and (not isinstance(records, str) or not records.strip()):
        c.issue("feed.records", "must be the dotted path of the record array, like 'data.items'",
                "必须是记录数组的点分路径，例如 'data.items'")
        records = None
    out.update(encoding=encoding, delimiter=delimiter, batch_size=batch, timezone=tz,
               records=records)
    return out


def _kind(c: _Checker, f: Mapping[str, Any], path: ElementPath, where: str) -> str:
    explicit = f.get("type")
    if explicit is not None:
        if explicit not in KINDS:
            c.issue(f"{where}.type", f"must be one of {', '.join(KINDS)}",
                    f"必须是以下之一：{'、'.join(KINDS)}")
            return "string"
        return str(explicit)
    return _KIND_OF_TYPE.get(path.leaf_type, "string")


def _field(c: _Checker, f: Any, rtype: str, where: str, keys: set[str]) -> FieldSpec | None:
    if not isinstance(f, Mapping):
        c.issue(where, "must be a table", "必须是表")
        return None
    c.unknown(f, _FIELD_KEYS, where)
    element = c.text(f, "element", where)
    if element is None:
        return None
    try:
        path = resolve_path(rtype, element)
    except PathError as exc:
        c.issue(f"{where}.element", str(exc), f"{rtype} 中不存在元素路径 {element!r}")
        return None
    if path.steps[0] == ("identifier", 0):
        c.issue(f"{where}.element", "identifier[0] is the resource's identity; use identifier[1]",
                "identifier[0] 为资源标识，请从 identifier[1] 开始")
    given = [k for k in ("source", "value", "template", "target", "target_identifier") if k in f]
    if len(given) != 1:
        c.issue(where, "give exactly one of source, value, template, target, target_identifier",
                "source、value、template、target、target_identifier 必须且只能给出一个")
        return None
    kind = _kind(c, f, path, where)
    required = bool(f.get("required", False))
    if "value" in f:
        return FieldSpec(where, path, "constant", value=f["value"], required=required)
    if "template" in f:
        if path.leaf_type not in _STRINGLIKE:
            c.issue(f"{where}.element", f"a template makes text; {element} is a "
                    f"{path.leaf_type}", f"模板生成文本，而 {element} 为 {path.leaf_type} 类型")
        tpl = c.template(c.text(f, "template", where), f"{where}.template")
        return FieldSpec(where, path, "template", template=tpl, required=required) if tpl else None
    if "target" in f or "target_identifier" in f:
        if path.leaf_type != "Reference":
            c.issue(f"{where}.element", f"{element} is a {path.leaf_type}, not a Reference",
                    f"{element} 不是 Reference 类型")
        if "target" in f:
            target = f.get("target")
            if target != "organization" and target not in keys:
                c.issue(f"{where}.target", "must be 'organization' or the key of a resource "
                        "in this mapping", "必须是 'organization' 或本映射中某资源的 key")
            return FieldSpec(where, path, "reference", target=str(target), required=required)
        ti = f["target_identifier"]
        if not isinstance(ti, Mapping):
            c.issue(f"{where}.target_identifier", "must be a table {type, system, value}",
                    "必须是 {type, system, value} 表")
            return None
        ttype = c.text(ti, "type", f"{where}.target_identifier")
        if ttype is not None and ttype not in resource_types():
            c.issue(f"{where}.target_identifier.type", f"unknown resource type {ttype!r}",
                    f"未知资源类型 {ttype!r}")
        tsys = c.text(ti, "system", f"{where}.target_identifier")
        tval = c.template(c.text(ti, "value", f"{where}.target_identifier"),
                          f"{where}.target_identifier.value")
        return FieldSpec(where, path, "reference", target_type=ttype, target_system=tsys,
                         target_value=tval, required=required)
    source = c.text(f, "source", where)
    mapped = f.get("map")
    if mapped is not None and not isinstance(mapped, Mapping):
        c.issue(f"{where}.map", "must be a table of source value = FHIR value",
                "必须是“源值 = FHIR 值”的表")
        mapped = None
    if mapped is None and kind == "string" and path.leaf_type not in _STRINGLIKE:
        c.issue(where, f"{element} is a {path.leaf_type}: give a map to build it from a column",
                f"{element} 为 {path.leaf_type} 类型：需用 map 把列值转换为该类型")
    if kind == "reference":
        c.issue(where, "a reference needs target or target_identifier",
                "引用字段需要 target 或 target_identifier")
    formats = f.get("formats")
    if formats is not None and (not isinstance(formats, list) or not formats
                                or not all(_usable_format(x) for x in formats)):
        c.issue(f"{where}.formats", "must be a list of strptime formats with a year, such as "
                "'%Y年%m月%d日'", "必须是包含年份的 strptime 格式列表，例如 '%Y年%m月%d日'")
        formats = None
    unit, unit_source, unit_map = f.get("unit"), f.get("unit_source"), f.get("unit_map")
    if kind == "quantity" and (unit is None) == (unit_source is None):
        c.issue(where, "a quantity needs exactly one of unit or unit_source",
                "数量字段需要 unit 或 unit_source 之一")
    if unit_map is not None and not isinstance(unit_map, Mapping):
        c.issue(f"{where}.unit_map", "must be a table of source unit = UCUM code",
                "必须是“源单位 = UCUM 代码”的表")
        unit_map = None
    if source is None:
        return None
    return FieldSpec(
        where, path, "mapped" if mapped is not None else kind, source=source,
        required=required, map=mapped, default=f.get("default"),
        formats=tuple(formats) if formats else None, unit=unit, unit_source=unit_source,
        unit_map=unit_map,
    )


def _usable_format(fmt: object) -> bool:
    """A strptime format with a year that reads back what it writes."""
    if not isinstance(fmt, str) or "%Y" not in fmt:
        return False
    sample = datetime(2001, 2, 3, 4, 5, 6)
    try:
        datetime.strptime(sample.strftime(fmt), fmt)
    except (ValueError, re.error):
        return False
    return True


_STRINGLIKE = frozenset({
    "string", "code", "id", "uri", "url", "canonical", "markdown", "oid", "uuid", "xhtml",
    "base64Binary", "time", "integer", "decimal", "boolean", "date", "dateTime", "instant",
    "positiveInt", "unsignedInt", "Quantity", "Reference",
})


def _resource(c: _Checker, r: Any, i: int, keys: set[str], each: set[str]
              ) -> ResourceSpec | None:
    where = f"resource[{i}]"
    if not isinstance(r, Mapping):
        c.issue(where, "must be a table", "必须是表")
        return None
    c.unknown(r, _RESOURCE_KEYS, where)
    key = c.text(r, "key", where) or f"#{i}"
    rtype = c.text(r, "type", where)
    if rtype is None:
        return None
    if rtype not in resource_types():
        c.issue(f"{where}.type", f"unknown resource type {rtype!r}", f"未知资源类型 {rtype!r}")
        return None
    if f"{rtype}.identifier" not in structures()[rtype]["elements"]:
        c.issue(f"{where}.type", f"{rtype} has no identifier, so it cannot be imported "
                "idempotently", f"{rtype} 没有 identifier 元素，无法幂等导入")
    mode = r.get("mode", "create")
    if mode not in ("create", "update"):
        c.issue(f"{where}.mode", "must be 'create' or 'update'", "必须是 'create' 或 'update'")
        mode = "create"
    ident = r.get("identifier")
    system: str | None = None
    value: Template | None = None
    if not isinstance(ident, Mapping):
        c.issue(f"{where}.identifier", "is required: {system, value} (the record's identity)",
                "为必填项：{system, value}（记录的唯一标识）")
    else:
        system = c.text(ident, "system", f"{where}.identifier")
        value = c.template(c.text(ident, "value", f"{where}.identifier"),
                           f"{where}.identifier.value")
    only_if = c.text(r, "only_if", where, required=False)
    for_each = c.text(r, "for_each", where, required=False)
    raw_fields = r.get("field", [])
    if not isinstance(raw_fields, list):
        c.issue(f"{where}.field", "must be an array of tables ([[resource.field]])",
                "必须是表数组（[[resource.field]]）")
        raw_fields = []
    fields = []
    for j, f in enumerate(raw_fields):
        spec = _field(c, f, rtype, f"{where}.field[{j}]", keys - {key} - each)
        if spec is not None:
            fields.append(spec)
    if system is None or value is None:
        return None
    return ResourceSpec(key, rtype, mode, system, value, only_if, tuple(fields), for_each)


def parse_mapping(data: Mapping[str, Any]) -> FeedMapping:
    """Check a parsed mapping and compile it; raises :class:`MappingError` with every issue."""
    c = _Checker()
    c.unknown(data, {"feed", "resource"}, "mapping")
    feed = _feed(c, data.get("feed"))
    raw = data.get("resource")
    if not isinstance(raw, list) or not raw:
        c.issue("resource", "at least one [[resource]] is required", "至少需要一个 [[resource]]")
        raw = []
    keys: set[str] = set()
    for i, r in enumerate(raw):
        key = r.get("key") if isinstance(r, Mapping) else None
        if isinstance(key, str):
            if not _KEY.fullmatch(key) or key == "organization":
                c.issue(f"resource[{i}].key",
                        "must be a name (letters, digits, _ -), not 'organization'",
                        "必须是名称（字母、数字、_、-），且不能为 'organization'")
            elif key in keys:
                c.issue(f"resource[{i}].key", f"duplicate key {key!r}", f"key {key!r} 重复")
            keys.add(key)
    # a resource made once per array item cannot be the target of a reference: which one?
    each = {str(r.get("key")) for r in raw if isinstance(r, Mapping) and r.get("for_each")}
    resources = [spec for i, r in enumerate(raw) if (spec := _resource(c, r, i, keys, each))]
    if c.issues:
        raise MappingError(c.issues)
    return FeedMapping(resources=tuple(resources), **feed)


def parse_mapping_toml(text: str) -> FeedMapping:
    """Parse TOML text and check it (:func:`parse_mapping`)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError([MappingIssue("mapping", f"not valid TOML: {exc}",
                                         f"不是有效的 TOML：{exc}")]) from None
    return parse_mapping(data)


def load_mapping(path: str | Path) -> FeedMapping:
    """Read a mapping file (TOML, UTF-8) and check it."""
    return parse_mapping_toml(Path(path).read_text(encoding="utf-8-sig"))
