"""Proof that a playbook string is the one SQL fragment it claims to be.

Types, defaults, checks, generated columns and index expressions are SQL by nature: they cannot be
sent as parameters, so they are spliced into DDL. `plan` builds that DDL in a scratch transaction
on a server a stranger's pull request may point at, so a string must be proven to be exactly one
type name or one expression before it goes anywhere near a server: `integer; COMMIT; ...` or
`0) ; COPY ... TO PROGRAM ... --` must be refused by the loader, with the file and line.

The proof uses PostgreSQL's own lexer and parser (pglast) in two steps:

1. the tokens of the fragment alone: no `;`, parentheses that never close more than they opened and
   end balanced (so the fragment cannot close the construct it is put in), and the lexer must end
   outside any string or comment (an unterminated one is a scan error);
2. the fragment inside a wrapper of one construct — `SELECT CAST(NULL AS <type>)`, `SELECT
   (<expression>)` — must parse as exactly that construct and nothing more.

Callers splice a proven expression inside parentheses, e.g. `DEFAULT (<expression>)`, which is
the context it was proven in; a proven type name is followed only by erpprov's own clauses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, NamedTuple

_MAX_FRAGMENT = 100_000  # characters; far beyond any real type or expression
# "col", "col DESC", "col ASC NULLS FIRST": the ordering words PostgreSQL's index syntax allows
_ORDERING = re.compile(r"^(?P<body>.+?)(?:\s+(?P<dir>asc|desc))?(?:\s+nulls\s+(?P<nulls>first|last))?\s*$",
                       re.IGNORECASE | re.DOTALL)


def _parser() -> Any:
    # Imported on first use: commands that never meet a fragment (validate of a roles-only play,
    # --help) do not pay for loading PostgreSQL's parser.
    from pglast import parser

    return parser


def _scan_balanced(text: str, what: str) -> None:
    if not text.strip():
        raise ValueError(f"{what} cannot be empty")
    if len(text) > _MAX_FRAGMENT:
        raise ValueError(f"{what} is {len(text)} characters long; at most {_MAX_FRAGMENT} are accepted")
    if "\x00" in text:
        raise ValueError(f"{what} cannot contain a NUL character")
    parser = _parser()
    try:
        tokens = parser.scan(text)
    except parser.ParseError as exc:
        raise ValueError(f"{what} {text!r} is not valid SQL: {exc}") from None
    depth = 0
    for token in tokens:
        if token.name == "ASCII_59":  # ';'
            raise ValueError(f"{what} {text!r} holds a ';': it must be a single {what}, not statements")
        if token.name in ("ASCII_40", "ASCII_91"):  # '(' '['
            depth += 1
        elif token.name in ("ASCII_41", "ASCII_93"):  # ')' ']'
            depth -= 1
            if depth < 0:
                raise ValueError(f"{what} {text!r} closes a parenthesis it did not open")
    if depth:
        raise ValueError(f"{what} {text!r} leaves a parenthesis open")


def _parse_one(wrapped: str, text: str, what: str) -> Any:
    parser = _parser()
    try:
        statements = parser.parse_sql(wrapped)
    except parser.ParseError as exc:
        # the position is in the wrapper, not in the user's text: leave it out
        reason = re.sub(r", at index \d+$", "", str(exc))
        if "end of input" in reason and parser.scan(text)[-1].name == "SQL_COMMENT":
            reason = "it ends in a -- comment, which would swallow the rest of the statement"
        raise ValueError(f"{what} {text!r} is not valid SQL: {reason}") from None
    if len(statements) != 1:
        raise ValueError(f"{what} {text!r} must be a single {what}")
    return statements[0].stmt


def _only_target(statement: Any) -> Any:
    """The one target of `SELECT <it>`, or None when the statement is anything else. Balanced
    tokens already keep the fragment inside its wrapper; this is the second, independent proof."""
    if type(statement).__name__ != "SelectStmt":
        return None
    extras = ("fromClause", "whereClause", "groupClause", "havingClause", "windowClause", "distinctClause",
              "sortClause", "limitCount", "limitOffset", "lockingClause", "withClause", "valuesLists", "intoClause")
    if any(getattr(statement, name, None) for name in extras) or len(statement.targetList or ()) != 1:
        return None
    return statement.targetList[0]


@lru_cache(maxsize=4096)
def type_name(text: str) -> str:
    """`text` if it is one PostgreSQL type name (`integer`, `varchar(20)[]`, `"My Type"`,
    `timestamp with time zone`); ValueError otherwise."""
    _scan_balanced(text, "type")
    target = _only_target(_parse_one(f"SELECT CAST(NULL AS {text})", text, "type"))
    if type(getattr(target, "val", None)).__name__ != "TypeCast":
        raise ValueError(f"type {text!r} is not a single type name")
    return text


@lru_cache(maxsize=4096)
def expression(text: str) -> str:
    """`text` if it is one SQL value expression (a default, a check, an index expression or
    predicate); ValueError otherwise. Splice it as `(text)`."""
    _scan_balanced(text, "expression")
    target = _only_target(_parse_one(f"SELECT ({text})", text, "expression"))
    if target is None:
        raise ValueError(f"expression {text!r} is not a single SQL expression")
    return text


@lru_cache(maxsize=4096)
def function_signature(text: str) -> str:
    """`text` if it names one function of the grant's schema by its argument types, as GRANT
    and to_regprocedure read it (`add(integer, integer)`, `"My Fn"(numeric)`, `now()`);
    ValueError otherwise."""
    what = "function signature"
    _scan_balanced(text, what)
    statement = _parse_one(f"GRANT EXECUTE ON FUNCTION {text} TO PUBLIC", text, what)
    objects: Any = getattr(statement, "objects", None) or ()
    if type(statement).__name__ != "GrantStmt" or len(objects) != 1 or len(statement.grantees or ()) != 1:
        raise ValueError(f"{what} {text!r} must name one function, such as add(integer, integer)")
    function = objects[0]
    if function.args_unspecified:
        raise ValueError(f"{what} {text!r} needs its argument types in parentheses: {text}() or {text}(integer)")
    if len(function.objname) != 1:
        raise ValueError(f"{what} {text!r} names a schema: the grant's own schema is the function's")
    if any(p.name or p.mode.value != "d" for p in function.objfuncargs or ()):
        raise ValueError(f"{what} {text!r} names an argument or its mode: give only the argument types")
    return text


def index_ordering(descending: bool, nulls_first: bool) -> str:
    """The words after an index key that give its order, each left out where it is PostgreSQL's
    default (ASC; NULLS LAST ascending, NULLS FIRST descending). A playbook entry and the SQL
    write them alike, so one speller serves both; `index_entry` reads them back."""
    words = ["DESC"] if descending else []
    if nulls_first != descending:
        words.append("NULLS FIRST" if nulls_first else "NULLS LAST")
    return " ".join(words)


class IndexEntry(NamedTuple):
    """One index `columns` entry, read."""

    body: str  # a column name, or a proven expression
    is_column: bool
    descending: bool = False
    nulls_first: bool = False
    # as written, each proven by `_KEY_TAIL` to be one (qualified) name: spliced as SQL
    collation: str | None = None
    opclass: str | None = None


_NAME = r'(?:[A-Za-z_][\w$]*|"[^"\x00]+")'
_QUALIFIED = rf"{_NAME}(?:\.{_NAME})?"
# `body [COLLATE name] [opclass]`; the lazy body makes `a COLLATE x` a collation, not a class
_KEY_TAIL = re.compile(rf"^(?P<body>.+?)(?:\s+COLLATE\s+(?P<collation>{_QUALIFIED}))?"
                       rf"(?:\s+(?P<opclass>{_QUALIFIED}))?\s*$", re.IGNORECASE | re.DOTALL)


def index_entry(entry: str, columns: Iterable[str]) -> IndexEntry:
    """An index `columns` entry: a column or an expression, then optionally `COLLATE name`, an
    operator class and the ordering, as in SQL. A column is named as an identifier, whatever
    characters its name holds; anything else must be one proven expression, spliced as
    `(expression)`. An entry that parses as one expression is one (`a COLLATE "C"` too: PostgreSQL
    stores that as the column with a collation)."""
    names = set(columns)
    if entry in names:
        return IndexEntry(entry, True)
    match = _ORDERING.match(entry)
    body = entry.strip()
    descending = nulls_first = False
    if match and (match.group("dir") or match.group("nulls")):
        body = match.group("body").strip()
        descending = (match.group("dir") or "").lower() == "desc"
        nulls = (match.group("nulls") or "").lower()
        nulls_first = nulls == "first" if nulls else descending
    if body in names:
        return IndexEntry(body, True, descending, nulls_first)
    try:
        return IndexEntry(expression(body), False, descending, nulls_first)
    except ValueError as whole:
        tail = _KEY_TAIL.match(body)
        if not tail or not (tail.group("collation") or tail.group("opclass")):
            raise
        key, collation, opclass = tail.group("body").strip(), tail.group("collation"), tail.group("opclass")
        if key not in names:
            try:
                expression(key)
            except ValueError:
                raise whole from None
        return IndexEntry(key, key in names, descending, nulls_first, collation, opclass)


def _anywhere(node: Any, names: tuple[str, ...]) -> bool:
    """Whether any SELECT at any depth of ``node`` sets one of the fields ``names``."""
    from pglast import ast

    if isinstance(node, ast.Node):
        if isinstance(node, ast.SelectStmt) and any(getattr(node, name, None) for name in names):
            return True
        return any(_anywhere(getattr(node, name), names) for name in node)
    if isinstance(node, tuple):
        return any(_anywhere(item, names) for item in node)
    return False


def _only_selects(node: Any) -> bool:
    """Whether every statement inside ``node`` (a query and its WITH clauses, at any depth) is a
    SELECT: `WITH gone AS (DELETE ...) SELECT ...` is a SelectStmt that writes."""
    from pglast import ast

    if isinstance(node, ast.Node) and not isinstance(node, ast.SelectStmt) and type(node).__name__.endswith("Stmt"):
        return False
    if isinstance(node, ast.Node):
        return all(_only_selects(getattr(node, name)) for name in node)
    if isinstance(node, tuple):
        return all(_only_selects(item) for item in node)
    return True


@lru_cache(maxsize=1024)
def query(text: str) -> str:
    """`text` if it is one SELECT (a view's query: VALUES, UNION, WITH ... SELECT too) that reads and
    writes nothing else — no INTO, no FOR UPDATE, no data-modifying WITH; ValueError otherwise.
    Spliced after `AS` as the rest of a CREATE VIEW statement."""
    _scan_balanced(text, "query")
    statement = _parse_one(text, text, "query")
    if type(statement).__name__ != "SelectStmt":
        raise ValueError(f"query {text[:80]!r} is not a SELECT")
    if _anywhere(statement, ("intoClause", "lockingClause")):
        raise ValueError(f"query {text[:80]!r} must only read (no INTO, no FOR UPDATE)")
    if not _only_selects(statement):
        raise ValueError(f"query {text[:80]!r} holds a statement that is not a SELECT")
    return text


@lru_cache(maxsize=4096)
def relations(text: str) -> frozenset[tuple[str | None, str]]:
    """The (schema or None, name) of every relation a proven query names, CTE names included: what
    it may read, for ordering creates before the server can say (a view over tables not made yet)."""
    from pglast import ast
    from pglast.visitors import Visitor

    found: set[tuple[str | None, str]] = set()

    class _Relations(Visitor):
        def visit_RangeVar(self, ancestors: Any, node: ast.RangeVar) -> None:
            found.add((node.schemaname, node.relname or ""))

    _Relations()(_parser().parse_sql(query(text)))
    return frozenset(found)


def _qualified(names: Any) -> tuple[str | None, str]:
    parts = [n.sval for n in names]
    return (parts[-2] if len(parts) > 1 else None, parts[-1])


@lru_cache(maxsize=4096)
def called_functions(text: str) -> frozenset[tuple[str | None, str]]:
    """The (schema or None, name) of every function a proven expression calls by name: what it
    waits for, when the same apply creates a function (a domain's default or check)."""
    from pglast import ast
    from pglast.visitors import Visitor

    found: set[tuple[str | None, str]] = set()

    class _Calls(Visitor):
        def visit_FuncCall(self, ancestors: Any, node: ast.FuncCall) -> None:
            found.add(_qualified(node.funcname))

    _Calls()(_parser().parse_sql(f"SELECT ({expression(text)})"))
    return frozenset(found)


@lru_cache(maxsize=4096)
def type_reference(text: str) -> tuple[str | None, str]:
    """The (schema or None, name) a proven type name refers to, arrays and modifiers left out
    (`app.code[]` is ("app", "code")); built-in types come back in pg_catalog."""
    statement = _parse_one(f"SELECT CAST(NULL AS {type_name(text)})", text, "type")
    return _qualified(statement.targetList[0].val.typeName.names)


def function_body(text: str, language: str, header: str) -> str:
    """`text` if PostgreSQL's parser accepts it as a body in ``language`` (sql: statements;
    plpgsql: a block, compiled under ``header``, the function's own `CREATE FUNCTION ... RETURNS
    ...` made of proven parts, so NEW, OUT parameters and RETURN QUERY mean what they will);
    other languages are only sent as a string literal. ValueError otherwise. The body always
    travels as one literal, never spliced, so it cannot end the statement it is in."""
    if not text.strip():
        raise ValueError("a function body cannot be empty")
    if "\x00" in text:
        raise ValueError("a function body cannot contain a NUL character")
    if len(text) > _MAX_FRAGMENT:
        raise ValueError(f"a function body is at most {_MAX_FRAGMENT} characters long")
    parser = _parser()
    try:
        if language == "sql":
            parser.parse_sql(text)
        elif language == "plpgsql":
            from pglast import parse_plpgsql

            parse_plpgsql(f"{header} LANGUAGE plpgsql AS '{text.replace(chr(39), chr(39) * 2)}'")
    except parser.ParseError as exc:
        raise ValueError(f"the {language} body is not valid: {exc}") from None
    return text
