"""A compiler for the FHIRPath subset that the R4 search-parameter registry uses.

FHIRPath — https://hl7.org/fhirpath/N1/ ; search-parameter expressions —
https://hl7.org/fhir/R4/searchparameter-definitions.html#SearchParameter.expression.

:func:`compile_path` tokenizes and parses an expression once and turns it into nested Python
closures (no ``eval``). Evaluating returns *nodes*: ``(value, type)`` pairs where ``value`` is
the parsed JSON (dict, str, number, bool) and ``type`` is the FHIR type of that value when it
can be known: a type code (``Quantity``, ``dateTime``, ``Reference``, ``Observation``), the
element path for backbone elements (``Observation.component``), or None. A choice element
(``Observation.value``) yields one node per ``value<Type>`` key present, typed from the key,
so an indexer can tell a ``valueQuantity`` from a ``valueString``.

Supported: member paths (the leading resource type name is a type filter), ``|``, ``=``,
``!=``, ``and``, ``or``, ``xor``, ``is``, ``as``, ``[n]``, literals, ``%resource``,
``%rootResource``, ``%context``, ``$this`` and the functions ``where``, ``exists``, ``empty``,
``not``, ``first``, ``last``, ``count``, ``as``, ``is``, ``ofType``, ``extension``,
``hasExtension``, ``hasValue`` and ``resolve``. ``resolve()`` does not fetch anything: it types
a reference by its literal ``Type/id`` (or ``Reference.type``), which is all that
``resolve() is Patient`` needs. Anything else raises :class:`FhirPathError` at compile time.

Compiling against a known root type (``compile_path(expr, "Observation")``) prunes union
branches written for other types (``Condition.code | Observation.code``) and resolves each
step against :func:`huitong.fhir.definitions.structures` ahead of time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from huitong.fhir.definitions import resource_types, structures

__all__ = [
    "UNSUPPORTED_EXPRESSIONS",
    "CompiledPath",
    "FhirPathError",
    "Node",
    "compile_path",
    "is_subtype",
    "parse_literal_reference",
]

Node = tuple[Any, str | None]
_Fn = Callable[[list[Node], Node], list[Node]]

# Registry expressions this compiler cannot handle. Every expression in the R4 registry
# compiles today; the test suite fails if this list and reality drift apart.
UNSUPPORTED_EXPRESSIONS: frozenset[str] = frozenset()


class FhirPathError(ValueError):
    """An expression outside the supported subset, or malformed."""


# --- references ------------------------------------------------------------------------------

_REF_RE = re.compile(
    r"(?P<base>https?://\S*?/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?",
    re.ASCII,
)


# A bundle names its Patient and Encounter in nearly every resource, and several search
# parameters index the same reference: a bounded memo saves the regex each time.
@lru_cache(maxsize=32768)
def parse_literal_reference(text: str) -> tuple[str, str, str | None] | None:
    """Split a literal reference into ``(type, id, absolute_url_or_None)``.

    Follows https://hl7.org/fhir/R4/references.html#literal: ``Patient/1``,
    ``Patient/1/_history/2`` (the version is dropped) and ``https://host/fhir/Patient/1``
    (the URL is returned without its ``_history`` part). Returns None for anything else:
    contained (``#x``), ``urn:uuid:``/``urn:oid:`` and logical canonical URLs whose last
    two segments are not ``ResourceType/id``.
    """
    m = _REF_RE.fullmatch(text)
    if m is None or m["type"] not in resource_types():
        return None
    base = m["base"]
    url = f"{base}{m['type']}/{m['id']}" if base else None
    return m["type"], m["id"], url


def _reference_type(value: Any) -> str | None:
    """The resource type a Reference (or canonical string) points at, if it says."""
    if type(value) is dict:
        ref = value.get("reference")
        if type(ref) is str:
            parsed = parse_literal_reference(ref)
            if parsed is not None:
                return parsed[0]
        declared = value.get("type")
        if type(declared) is str:
            # Reference.type is a uri: "Patient" or the StructureDefinition URL.
            name = declared.rsplit("/", 1)[-1]
            return name if name in resource_types() else None
        return None
    if type(value) is str:
        parsed = parse_literal_reference(value.split("|", 1)[0])
        return parsed[0] if parsed is not None else None
    return None


# --- the type model --------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def is_subtype(type_name: str | None, base: str) -> bool:
    """True when ``type_name`` is ``base`` or derives from it (``Age`` -> ``Quantity``,
    ``code`` -> ``string``, ``Observation`` -> ``Resource``, a backbone path ->
    ``BackboneElement``)."""
    defs = structures()
    seen = 0
    current = type_name
    while current is not None and seen < 16:
        if current == base:
            return True
        if current not in defs:
            # Backbone element paths (``Observation.component``) are BackboneElements.
            current = "BackboneElement" if "." in current else None
        else:
            current = defs[current].get("base")
        seen += 1
    return False


def _type_name(name: str) -> str:
    """Map a type specifier to a FHIR type code: ``FHIR.Quantity`` -> ``Quantity``,
    ``System.DateTime``/``DateTime`` -> ``dateTime`` (the registry writes
    ``value.as(DateTime)`` for the FHIR primitive)."""
    name = name.rsplit(".", 1)[-1]
    defs = structures()
    if name in defs:
        return name
    lowered = name[:1].lower() + name[1:]
    if lowered in defs:
        return lowered
    raise FhirPathError(f"unknown type {name!r}")


@dataclass(frozen=True, slots=True)
class _Child:
    """How to step from a value of some type to one of its elements."""

    keys: tuple[tuple[str, str | None], ...]  # (JSON key, type of the value under it)
    choice: bool  # a [x] element: keys are the value<Type> variants
    dynamic: bool  # typed Resource: the node's type is its resourceType


@lru_cache(maxsize=8192)
def _child(type_path: str | None, name: str) -> _Child | None:
    """Resolve ``name`` under a type (``HumanName``) or backbone path (``Observation.component``).

    Returns None when the element does not exist on that type, so a step over it can never
    yield anything.
    """
    if type_path is None:
        return _Child(((name, None),), choice=False, dynamic=False)
    root = type_path.split(".", 1)[0]
    definition = structures().get(root)
    if definition is None:
        return None
    elements = definition.get("elements") or {}
    path = f"{type_path}.{name}"
    element = elements.get(path)
    if element is not None:
        types, content_ref = element[2], element[3]
        if content_ref:
            return _Child(((name, content_ref.lstrip("#")),), choice=False, dynamic=False)
        if len(types) == 1 and types[0] in ("BackboneElement", "Element"):
            return _Child(((name, path),), choice=False, dynamic=False)
        if len(types) == 1 and types[0] == "Resource":
            return _Child(((name, None),), choice=False, dynamic=True)
        child_type = types[0] if len(types) == 1 else None
        return _Child(((name, child_type),), choice=False, dynamic=False)
    element = elements.get(path + "[x]")
    if element is not None:
        keys = tuple((name + t[:1].upper() + t[1:], t) for t in element[2])
        return _Child(keys, choice=True, dynamic=False)
    return None


# --- tokenizer and parser --------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""\s+|//[^\n]*|/\*.*?\*/
    |(?P<str>'(?:[^'\\]|\\.)*')
    |(?P<num>\d+(?:\.\d+)?)
    |(?P<id>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)
    |(?P<var>%[A-Za-z_][A-Za-z0-9_]*|%`[^`]+`|\$[a-z]+)
    |(?P<op><=|>=|!=|!~|[.|()\[\],=<>~+\-*/&{}])""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n"}
_ESCAPES |= {"r": "\r", "t": "\t"}

# Binding power of the binary operators (https://hl7.org/fhirpath/N1/#operator-precedence);
# the ones in _UNSUPPORTED parse but are rejected, so errors name the operator.
_BINARY = {"implies": 1, "or": 2, "xor": 2, "and": 3, "in": 4, "contains": 4}
_BINARY |= {"=": 5, "!=": 5, "~": 5, "!~": 5, "<": 6, ">": 6, "<=": 6, ">=": 6, "|": 7}
_BINARY |= {"is": 8, "as": 8, "+": 9, "-": 9, "&": 9, "*": 10, "/": 10, "div": 10, "mod": 10}
_SUPPORTED_BINARY = frozenset({"or", "xor", "and", "=", "!=", "|", "is", "as"})


def _unescape(body: str) -> str:
    def repl(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc.startswith("u"):
            return chr(int(esc[1:], 16))
        return _ESCAPES.get(esc, esc)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", repl, body)


def _tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise FhirPathError(f"unexpected character {text[pos]!r} at {pos} in {text!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind is None:
            continue  # whitespace or comment
        raw = m.group(kind)
        if kind == "str":
            tokens.append(("str", _unescape(raw[1:-1])))
        elif kind == "num":
            tokens.append(("num", float(raw) if "." in raw else int(raw)))
        elif kind == "id":
            tokens.append(("id", raw.strip("`")))
        elif kind == "var":
            tokens.append(("var", raw.replace("`", "")))
        else:
            tokens.append(("op", raw))
    tokens.append(("end", None))
    return tokens


# AST: tuples tagged by their first item.
#   ("member", focus|None, name)  ("call", focus|None, name, args)  ("index", focus, expr)
#   ("binary", op, left, right)   ("type", "is"|"as", left, type_name)
#   ("literal", value, type)      ("var", name)                      ("empty",)
_Ast = tuple[Any, ...]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def _peek(self) -> tuple[str, Any]:
        return self.tokens[self.pos]

    def _next(self) -> tuple[str, Any]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _expect(self, op: str) -> None:
        kind, value = self._next()
        if kind != "op" or value != op:
            raise FhirPathError(f"expected {op!r}, got {value!r} in {self.text!r}")

    def parse(self) -> _Ast:
        ast = self._expression(0)
        if self._peek()[0] != "end":
            raise FhirPathError(f"unexpected {self._peek()[1]!r} in {self.text!r}")
        return ast

    def _binary_op(self) -> str | None:
        kind, value = self._peek()
        if (kind == "op" or kind == "id") and value in _BINARY:
            return str(value)
        return None

    def _expression(self, min_power: int) -> _Ast:
        left = self._postfix(self._term())
        while (op := self._binary_op()) is not None and _BINARY[op] > min_power:
            self._next()
            if op not in _SUPPORTED_BINARY:
                raise FhirPathError(f"operator {op!r} is not supported in {self.text!r}")
            if op in ("is", "as"):
                left = ("type", op, left, _type_name(self._type_specifier()))
            else:
                left = ("binary", op, left, self._expression(_BINARY[op]))
        return left

    def _type_specifier(self) -> str:
        kind, value = self._next()
        if kind != "id":
            raise FhirPathError(f"expected a type name in {self.text!r}")
        name = str(value)
        while self._peek() == ("op", "."):
            self._next()
            kind, value = self._next()
            if kind != "id":
                raise FhirPathError(f"expected a type name in {self.text!r}")
            name = f"{name}.{value}"
        return name

    def _term(self) -> _Ast:
        kind, value = self._next()
        if kind == "str":
            return ("literal", value, "string")
        if kind == "num":
            return ("literal", value, "integer" if type(value) is int else "decimal")
        if kind == "var":
            return ("var", value)
        if kind == "id":
            if value in ("true", "false") and self._peek() != ("op", "("):
                return ("literal", value == "true", "boolean")
            return self._invocation(None, str(value))
        if kind == "op" and value == "(":
            inner = self._expression(0)
            self._expect(")")
            return inner
        if kind == "op" and value == "{":
            self._expect("}")
            return ("empty",)
        if kind == "op" and value == "-" and self._peek()[0] == "num":
            return ("literal", -self._next()[1], "decimal")
        raise FhirPathError(f"unexpected {value!r} in {self.text!r}")

    def _invocation(self, focus: _Ast | None, name: str) -> _Ast:
        if self._peek() != ("op", "("):
            return ("member", focus, name)
        self._next()
        args: list[_Ast] = []
        if self._peek() != ("op", ")"):
            while True:
                if name in ("is", "as", "ofType"):
                    args.append(("literal", _type_name(self._type_specifier()), "type"))
                else:
                    args.append(self._expression(0))
                if self._peek() != ("op", ","):
                    break
                self._next()
        self._expect(")")
        return ("call", focus, name, tuple(args))

    def _postfix(self, ast: _Ast) -> _Ast:
        while True:
            token = self._peek()
            if token == ("op", "."):
                self._next()
                kind, value = self._next()
                if kind != "id":
                    raise FhirPathError(f"expected a name after '.' in {self.text!r}")
                ast = self._invocation(ast, str(value))
            elif token == ("op", "["):
                self._next()
                index = self._expression(0)
                self._expect("]")
                ast = ("index", ast, index)
            else:
                return ast


# --- compiler --------------------------------------------------------------------------------


@dataclass(slots=True)
class _C:
    """A compiled sub-expression and what is known about it before running it."""

    fn: _Fn
    type: str | None = None  # static type of every output node, when known
    empty: bool = False  # can never yield anything
    # The output is empty unless the focus (a dict) has one of these keys; None = unknown.
    keys: frozenset[str] | None = None
    is_focus: bool = False  # the output is the input focus itself
    child: _Child | None = None  # set on member steps, for the as()/ofType() shortcut
    base: _C | None = None  # the focus of a member step


def _no_nodes(focus: list[Node], root: Node) -> list[Node]:
    return []


def _identity(focus: list[Node], root: Node) -> list[Node]:
    return focus


_EMPTY = _C(_no_nodes, empty=True, keys=frozenset())
_TRUE: list[Node] = [(True, "boolean")]
_FALSE: list[Node] = [(False, "boolean")]


def _truth(nodes: list[Node]) -> bool | None:
    """FHIRPath singleton evaluation to Boolean: empty -> None; a lone non-boolean -> True.

    FHIRPath makes several values an error; an indexer must not fail on odd data, so they
    count as empty (not true) instead.
    """
    if len(nodes) != 1:
        return None
    value = nodes[0][0]
    return value if type(value) is bool else True


def _step_fn(child: _Child, base_fn: _Fn | None) -> _Fn:
    keys = child.keys
    if child.dynamic:
        (key, _t) = keys[0]

        def step_resource(focus: list[Node], root: Node) -> list[Node]:
            out: list[Node] = []
            for value, _ in base_fn(focus, root) if base_fn else focus:
                if type(value) is dict:
                    c = value.get(key)
                    for item in c if type(c) is list else (c,):
                        if type(item) is dict:
                            rt = item.get("resourceType")
                            out.append((item, rt if type(rt) is str else None))
            return out

        return step_resource
    if len(keys) == 1:
        (key, ctype) = keys[0]

        def step(focus: list[Node], root: Node) -> list[Node]:
            out: list[Node] = []
            for value, _ in base_fn(focus, root) if base_fn else focus:
                if type(value) is dict:
                    c = value.get(key)
                    if c is not None:
                        if type(c) is list:
                            out.extend((item, ctype) for item in c if item is not None)
                        else:
                            out.append((c, ctype))
            return out

        return step

    def step_choice(focus: list[Node], root: Node) -> list[Node]:
        out: list[Node] = []
        for value, _ in base_fn(focus, root) if base_fn else focus:
            if type(value) is dict:
                for key, ctype in keys:
                    c = value.get(key)
                    if c is not None:
                        if type(c) is list:
                            out.extend((item, ctype) for item in c if item is not None)
                        else:
                            out.append((c, ctype))
        return out

    return step_choice


@lru_cache(maxsize=4096)
def _plain_step(child: _Child) -> _Fn:
    return _step_fn(child, None)


def _dynamic_step_fn(name: str, base_fn: _Fn) -> _Fn:
    """A member step whose input type is only known at run time."""

    def step(focus: list[Node], root: Node) -> list[Node]:
        out: list[Node] = []
        for node in base_fn(focus, root):
            child = _child(node[1], name)
            if child is not None:
                out.extend(_plain_step(child)([node], root))
        return out

    return step


class _Compiler:
    def __init__(self, text: str, root_type: str | None) -> None:
        self.text = text
        self.root_type = root_type

    def compile(self, ast: _Ast, ctx: str | None) -> _C:
        """Compile ``ast`` for input nodes of static type ``ctx`` (None: unknown)."""
        tag = ast[0]
        if tag == "member":
            return self._member(ast[1], ast[2], ctx)
        if tag == "call":
            return self._call(ast[1], ast[2], ast[3], ctx)
        if tag == "index":
            return self._index(ast[1], ast[2], ctx)
        if tag == "binary":
            return self._binary(ast[1], ast[2], ast[3], ctx)
        if tag == "type":
            return self._type_op(ast[1], self.compile(ast[2], ctx), ast[3])
        if tag == "literal":
            nodes: list[Node] = [(ast[1], ast[2])]
            return _C(lambda focus, root: nodes, type=ast[2])
        if tag == "var":
            return self._var(ast[1], ctx)
        return _EMPTY  # "{}"

    def _focus(self, ast: _Ast | None, ctx: str | None) -> _C:
        return _C(_identity, ctx, is_focus=True) if ast is None else self.compile(ast, ctx)

    def _var(self, name: str, ctx: str | None) -> _C:
        if name in ("%resource", "%rootResource", "%context"):
            return _C(lambda focus, root: [root], type=self.root_type)
        if name == "$this":
            return _C(_identity, type=ctx, is_focus=True)
        raise FhirPathError(f"variable {name} is not supported in {self.text!r}")

    def _member(self, focus_ast: _Ast | None, name: str, ctx: str | None) -> _C:
        if focus_ast is None and name[:1].isupper() and _is_resource_name(name):
            return self._type_filter(name, ctx)
        base = self._focus(focus_ast, ctx)
        if base.empty:
            return _EMPTY
        base_fn = None if base.is_focus else base.fn
        if base.type is None:
            return _C(_dynamic_step_fn(name, base.fn), keys=None if base.is_focus else base.keys)
        child = _child(base.type, name)
        if child is None:
            return _EMPTY
        keys = frozenset(k for k, _ in child.keys) if base.is_focus else base.keys
        out_type = None if child.choice or child.dynamic else child.keys[0][1]
        return _C(_step_fn(child, base_fn), out_type, keys=keys, child=child, base=base)

    def _type_filter(self, name: str, ctx: str | None) -> _C:
        """A leading ``Observation`` (or ``Resource``) keeps the focus only if it is one."""
        if ctx is not None:
            return _C(_identity, ctx, is_focus=True) if is_subtype(ctx, name) else _EMPTY

        def keep(focus: list[Node], root: Node) -> list[Node]:
            return [n for n in focus if is_subtype(n[1], name)]

        return _C(keep, name, keys=None)

    def _type_op(self, op: str, base: _C, type_name: str) -> _C:
        if base.empty:
            return _EMPTY
        if op == "is":
            fn = base.fn

            def is_type(focus: list[Node], root: Node) -> list[Node]:
                nodes = fn(focus, root)
                if len(nodes) != 1:
                    return []  # empty stays empty; several values are not an error here
                return _TRUE if is_subtype(nodes[0][1], type_name) else _FALSE

            return _C(is_type, "boolean")
        if base.child is not None and base.child.choice and base.base is not None:
            # ``value as Quantity`` on a choice element: read only the matching keys.
            # The key suffix is the type, so an exact match wins over a subtype: on
            # ``ConceptMap.source[x]`` (uri | canonical), ``as uri`` means ``sourceUri``.
            keys: tuple[tuple[str, str | None], ...]
            keys = tuple((k, t) for k, t in base.child.keys if t == type_name)
            keys = keys or tuple((k, t) for k, t in base.child.keys if is_subtype(t, type_name))
            if not keys:
                return _EMPTY
            narrowed = _Child(keys, choice=True, dynamic=False)
            base_fn = None if base.base.is_focus else base.base.fn
            out_keys = frozenset(k for k, _ in keys) if base.base.is_focus else base.keys
            out_type = keys[0][1] if len(keys) == 1 else None
            return _C(_step_fn(narrowed, base_fn), out_type, keys=out_keys)
        if base.type is not None:
            return base if is_subtype(base.type, type_name) else _EMPTY
        fn = base.fn

        def as_type(focus: list[Node], root: Node) -> list[Node]:
            return [n for n in fn(focus, root) if is_subtype(n[1], type_name)]

        return _C(as_type, type_name, keys=base.keys)

    def _index(self, focus_ast: _Ast, index_ast: _Ast, ctx: str | None) -> _C:
        base = self.compile(focus_ast, ctx)
        if index_ast[0] != "literal" or type(index_ast[1]) is not int:
            raise FhirPathError(f"only literal integer indexes are supported in {self.text!r}")
        if base.empty:
            return _EMPTY
        fn, i = base.fn, index_ast[1]

        def index(focus: list[Node], root: Node) -> list[Node]:
            nodes = fn(focus, root)
            return [nodes[i]] if 0 <= i < len(nodes) else []

        return _C(index, base.type, keys=base.keys)

    def _binary(self, op: str, left_ast: _Ast, right_ast: _Ast, ctx: str | None) -> _C:
        left, right = self.compile(left_ast, ctx), self.compile(right_ast, ctx)
        if op == "|":
            return _union(left, right)
        lf, rf = left.fn, right.fn
        if op in ("=", "!="):
            negate = op == "!="

            def equals(focus: list[Node], root: Node) -> list[Node]:
                a, b = lf(focus, root), rf(focus, root)
                if not a or not b:
                    return []
                same = len(a) == len(b) and all(
                    _equal(x[0], y[0]) for x, y in zip(a, b, strict=True)
                )
                return _TRUE if same != negate else _FALSE

            return _C(equals, "boolean")

        def logic(focus: list[Node], root: Node) -> list[Node]:
            result = _LOGIC[op](_truth(lf(focus, root)), _truth(rf(focus, root)))
            return [] if result is None else (_TRUE if result else _FALSE)

        return _C(logic, "boolean")

    def _call(
        self, focus_ast: _Ast | None, name: str, args: tuple[_Ast, ...], ctx: str | None
    ) -> _C:
        base = self._focus(focus_ast, ctx)
        arity = _FUNCTIONS.get(name)
        if arity is None:
            raise FhirPathError(f"function {name}() is not supported in {self.text!r}")
        if len(args) not in arity:
            raise FhirPathError(f"{name}() takes {arity} arguments in {self.text!r}")
        if name in ("as", "ofType"):
            return self._type_op("as", base, args[0][1])
        if name == "is":
            return self._type_op("is", base, args[0][1])
        fn = base.fn
        if name in ("exists", "empty", "count"):
            if args:
                base = self._where(base, args[0])
                fn = base.fn
            if base.empty:
                constant: list[Node] = {"exists": _FALSE, "empty": _TRUE}.get(name) or [
                    (0, "integer")
                ]
                return _C(lambda focus, root: constant, "integer" if name == "count" else "boolean")
            return _C(_AGGREGATES[name](fn), "integer" if name == "count" else "boolean")
        if base.empty:
            return _EMPTY
        if name == "where":
            return self._where(base, args[0])
        if name == "not":

            def negate(focus: list[Node], root: Node) -> list[Node]:
                value = _truth(fn(focus, root))
                return [] if value is None else (_FALSE if value else _TRUE)

            return _C(negate, "boolean")
        if name in ("first", "last"):
            pick = 0 if name == "first" else -1

            def first_or_last(focus: list[Node], root: Node) -> list[Node]:
                nodes = fn(focus, root)
                return [nodes[pick]] if nodes else []

            return _C(first_or_last, base.type, keys=base.keys)
        if name in ("extension", "hasExtension"):
            url = self._string_arg(name, args[0])
            return _extension(base, url, name == "hasExtension")
        if name == "hasValue":

            def has_value(focus: list[Node], root: Node) -> list[Node]:
                nodes = fn(focus, root)
                return _TRUE if len(nodes) == 1 and type(nodes[0][0]) in _PRIMITIVES else _FALSE

            return _C(has_value, "boolean")
        # resolve(): type each reference by its literal form; values are opaque markers.

        def resolve(focus: list[Node], root: Node) -> list[Node]:
            return [
                (_RESOLVED, t) for v, _ in fn(focus, root) if (t := _reference_type(v)) is not None
            ]

        return _C(resolve, None, keys=base.keys)

    def _string_arg(self, name: str, ast: _Ast) -> str:
        if ast[0] != "literal" or type(ast[1]) is not str:
            raise FhirPathError(f"{name}() needs a string literal in {self.text!r}")
        return str(ast[1])

    def _where(self, base: _C, criteria_ast: _Ast) -> _C:
        if base.empty:
            return _EMPTY
        criteria = self.compile(criteria_ast, base.type).fn
        fn = base.fn

        def where(focus: list[Node], root: Node) -> list[Node]:
            return [n for n in fn(focus, root) if _truth(criteria([n], root)) is True]

        return _C(where, base.type, keys=base.keys)


_PRIMITIVES = (str, int, float, bool)
_RESOLVED = object()  # stands for a resolved resource: only its type is known

_FUNCTIONS: dict[str, tuple[int, ...]] = {
    "where": (1,),
    "exists": (0, 1),
    "empty": (0,),
    "count": (0,),
    "not": (0,),
    "first": (0,),
    "last": (0,),
    "as": (1,),
    "is": (1,),
    "ofType": (1,),
    "extension": (1,),
    "hasExtension": (1,),
    "hasValue": (0,),
    "resolve": (0,),
}

_LOGIC: dict[str, Callable[[bool | None, bool | None], bool | None]] = {
    "and": lambda a, b: False if a is False or b is False else (True if a and b else None),
    "or": lambda a, b: (
        True if a is True or b is True else (False if a is False and b is False else None)
    ),
    "xor": lambda a, b: None if a is None or b is None else a != b,
}

_AGGREGATES: dict[str, Callable[[_Fn], _Fn]] = {
    "exists": lambda fn: lambda focus, root: _TRUE if fn(focus, root) else _FALSE,
    "empty": lambda fn: lambda focus, root: _FALSE if fn(focus, root) else _TRUE,
    "count": lambda fn: lambda focus, root: [(len(fn(focus, root)), "integer")],
}


def _equal(a: Any, b: Any) -> bool:
    # FHIRPath equality never equates a boolean with a string or number (False != 0).
    if (type(a) is bool) != (type(b) is bool):
        return False
    return bool(a == b)


def _union(left: _C, right: _C) -> _C:
    if left.empty:
        return right
    if right.empty:
        return left
    lf, rf = left.fn, right.fn

    def union(focus: list[Node], root: Node) -> list[Node]:
        # FHIRPath's | removes duplicates; identity is enough for nodes from one resource.
        out = lf(focus, root)
        extra = rf(focus, root)
        if not out:
            return extra
        if not extra:
            return out
        ids = {id(v) for v, _ in out}
        return out + [n for n in extra if id(n[0]) not in ids or type(n[0]) is not dict]

    keys = None if left.keys is None or right.keys is None else left.keys | right.keys
    same_type = left.type if left.type == right.type else None
    return _C(union, same_type, keys=keys)


def _extension(base: _C, url: str, as_boolean: bool) -> _C:
    fn = base.fn

    def extensions(focus: list[Node], root: Node) -> list[Node]:
        out: list[Node] = []
        for value, _ in fn(focus, root):
            if type(value) is dict:
                items = value.get("extension")
                if type(items) is list:
                    out.extend(
                        (e, "Extension") for e in items if type(e) is dict and e.get("url") == url
                    )
        return out

    if not as_boolean:
        keys = frozenset({"extension"}) if base.is_focus else base.keys
        return _C(extensions, "Extension", keys=keys)
    return _C(lambda focus, root: _TRUE if extensions(focus, root) else _FALSE, "boolean")


def _is_resource_name(name: str) -> bool:
    definition = structures().get(name)
    return definition is not None and definition["kind"] == "resource"


# --- public surface --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledPath:
    """A compiled expression.

    ``evaluate(focus_nodes, root_node)`` is the fast form used by the indexer;
    calling the object takes plain JSON. ``root_keys``: when not None, evaluating against a
    resource that has none of these top-level keys yields nothing, so callers may skip it.
    ``never_matches`` is True when the expression can yield nothing for this context type
    (a union written only for other resource types). ``result_type`` is the type of every
    result node when it is known before evaluation (``Observation.component`` for that
    path; None for a choice element or a mixed union).
    """

    expression: str
    context_type: str | None
    evaluate: _Fn
    root_keys: frozenset[str] | None
    never_matches: bool
    result_type: str | None

    def __call__(self, focus: Any, resource: Any = None) -> list[Node]:
        focus_type = self.context_type
        if focus_type is None and type(focus) is dict:
            rt = focus.get("resourceType")
            focus_type = rt if type(rt) is str else None
        root = focus if resource is None else resource
        root_type = root.get("resourceType") if type(root) is dict else None
        return list(self.evaluate([(focus, focus_type)], (root, root_type)))


@lru_cache(maxsize=4096)
def compile_path(expression: str, context_type: str | None = None) -> CompiledPath:
    """Compile a FHIRPath expression for input of ``context_type``.

    ``context_type`` is a resource type (``Observation``), a data type (``Quantity``), a
    backbone path (``Observation.component``), or None to type the input at run time.
    ``%resource`` is typed as the resource the context belongs to. Raises
    :class:`FhirPathError` for syntax outside the supported subset.
    """
    root_type = context_type.split(".", 1)[0] if context_type else None
    if root_type is not None and not _is_resource_name(root_type):
        root_type = None
    compiler = _Compiler(expression, root_type)
    compiled = compiler.compile(_Parser(expression).parse(), context_type)
    return CompiledPath(
        expression=expression,
        context_type=context_type,
        evaluate=compiled.fn,
        root_keys=compiled.keys,
        never_matches=compiled.empty,
        result_type=compiled.type,
    )
