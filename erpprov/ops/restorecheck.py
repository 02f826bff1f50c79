"""What a plain SQL backup may hold before psql runs it: SQL statements that stay inside the one
transaction of the restore, and COPY data. Nothing that escapes it.

psql would obey a `COMMIT` in the file (what came before it stays, whatever fails later) and run
its meta-commands (`\\! cmd` is a shell command on this machine). So the file is read the way psql
reads it, statement by statement, with PostgreSQL's own lexer and parser (pglast): quotes, dollar
quotes and comments hide nothing, COPY ... FROM stdin data is skipped up to its `\\.` line, and a
statement ends where psql ends it (a `;` outside parentheses and outside the BEGIN ... END of a
CREATE FUNCTION/PROCEDURE body). Refused: every transaction-control statement, a psql statement
the server would split into several, every meta-command except pg_dump's own `\\restrict` and
`\\unrestrict`, and changes to the settings psql's lexer depends on (standard_conforming_strings,
client_encoding), which would make psql read the rest of the file differently from this check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pglast import ast, parser
from pglast.parser import ParseError

from erpprov.errors import ErpprovError

# pg_dump's own meta-commands (since 17.6, 16.10, 15.14, ...): they put psql in a mode where no
# other meta-command runs, so they are safe to pass on.
_DUMP_META = re.compile(r"\\(un)?restrict [A-Za-z0-9]+\s*")
# The first words of transaction control, for statements PostgreSQL's parser here does not know
_TRANSACTION_WORDS = {"begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release", "prepare"}
_COMMENTS = {"SQL_COMMENT", "C_COMMENT"}
_LEXER_SETTINGS = ("standard_conforming_strings", "client_encoding")
# Client encodings whose multi-byte characters may hold the byte of a quote or a backslash
_UNSAFE_ENCODINGS = {"sjis", "shift_jis_2004", "big5", "gbk", "uhc", "gb18030", "johab", "win932", "win936",
                     "win949", "win950"}


@dataclass
class _Reader:
    name: str
    pending: list[str] = field(default_factory=list)  # lines of the statement not yet complete
    first_line: int = 1  # the file's line number of pending[0]
    in_copy: bool = False

    def fail(self, line: int, why: str) -> ErpprovError:
        return ErpprovError(f"{self.name}:{line}: {why}; the file was not restored and nothing was changed",
                            hint="restore only files made by pg_dump or `erpprov backup`")


def check_plain_dump(path: Path) -> None:
    """Raise an ErpprovError naming the first line of ``path`` that could act outside the restore's
    transaction, before anything is run."""
    with path.open("rb") as handle:
        check_script(handle, str(path))


def check_script(lines: Iterable[bytes], name: str) -> None:
    """As check_plain_dump, for the lines of a script (what pg_restore prints for an archive)."""
    reader = _Reader(name)
    for number, raw in enumerate(lines, start=1):
        line = _decode(raw)
        if reader.in_copy:
            reader.in_copy = line.rstrip("\r\n") != "\\."
            reader.first_line = number + 1
            continue
        if _DUMP_META.fullmatch(line) and _between_statements(reader.pending):
            line = "\n"  # psql runs it as a meta-command of its own; its key need not lex as SQL
        if not reader.pending:
            reader.first_line = number
        reader.pending.append(line)
        if ";" in line or "\\" in line:  # only then can a statement end or a meta-command start
            _consume(reader, final=False)
    _consume(reader, final=True)


def _between_statements(pending: list[str]) -> bool:
    """Whether psql, having read ``pending``, is outside any statement (only comments so far)."""
    try:
        return all(token.name in _COMMENTS for token in parser.scan("".join(pending)))
    except ParseError:
        return False


def _decode(raw: bytes) -> str:
    # Non-UTF-8 bytes are never a quote, a semicolon or a backslash: Latin-1 keeps them as letters.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _consume(reader: _Reader, *, final: bool) -> None:
    """Check the complete statements among the pending lines; keep the rest pending."""
    text = "".join(reader.pending)
    try:
        tokens = parser.scan(text)
    except ParseError:  # an open quote or comment: the statement goes on in the next lines
        if final:
            raise reader.fail(reader.first_line, "unterminated quoted string or comment") from None
        return
    start, depth, words, begin = 0, 0, [], 0
    for token in tokens:
        if token.name in _COMMENTS:
            continue
        piece = text[token.start:token.end + 1]
        if piece == "\\":
            raise reader.fail(_line_of(reader, text, token.start),
                              f"a psql meta-command ({_rest_of_line(text, token.start)!r}) is not allowed")
        if piece == "(":
            depth += 1
        elif piece == ")":
            depth = max(0, depth - 1)
        elif _is_word(token, piece):
            words.append(piece.lower())
            begin = _begin_depth(words, begin, depth)
        elif piece == ";" and depth == 0 and begin == 0:
            copy = _check_statement(reader, text, start, token.end + 1)
            start, depth, words, begin = token.end + 1, 0, [], 0
            if copy:
                if text[start:].strip():
                    raise reader.fail(_line_of(reader, text, start), "text after COPY ... FROM stdin on its line")
                reader.in_copy = True
                reader.pending = []
                return
    rest = text[start:]
    if final and rest.strip() and any(t.start >= start for t in tokens):
        _check_statement(reader, text, start, len(text))
        rest = ""
    reader.first_line += text[:start].count("\n")
    reader.pending = [rest] if rest.strip() else []


def _is_word(token: parser.Token, piece: str) -> bool:
    """psql's {identifier}: an unquoted word, keyword or not."""
    return (token.name == "IDENT" or token.kind != "NO_KEYWORD") and not piece.startswith('"')


def _begin_depth(words: list[str], depth: int, parens: int) -> int:
    """psql's rule for the body of CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN ... END, whose
    `;` do not end the statement (psqlscan.l)."""
    head = words[:4]
    routine = head[:1] == ["create"] and (head[1:2] in (["function"], ["procedure"]) or (
        head[1:3] == ["or", "replace"] and head[3:4] in (["function"], ["procedure"])))
    if not routine or parens:
        return depth
    word = words[-1]
    if word == "begin":
        return depth + 1
    if word == "case" and depth >= 1:
        return depth + 1
    if word == "end" and depth > 0:
        return depth - 1
    return depth


def _check_statement(reader: _Reader, text: str, start: int, end: int) -> bool:
    """Refuse what would leave the transaction; True for COPY ... FROM stdin (data follows)."""
    statement = text[start:end]
    line = _line_of(reader, text, start + len(statement) - len(statement.lstrip()))
    try:
        parsed = parser.parse_sql(statement)
    except ParseError:
        # Not SQL this parser knows: the server says whether it is; it can only be harmless here
        # when it is one statement that is not transaction control.
        words = [statement[t.start:t.end + 1].lower() for t in parser.scan(statement) if t.name not in _COMMENTS]
        if words and words[0] in _TRANSACTION_WORDS:
            raise reader.fail(line, f"a statement beginning with {words[0].upper()} could be transaction control, "
                                    "which is not allowed") from None
        if ";" in words[:-1]:
            raise reader.fail(line, "several statements where psql sends one are not allowed") from None
        return bool(words) and words[0] == "copy" and "stdin" in words
    if len(parsed) > 1:
        raise reader.fail(line, "several statements where psql sends one are not allowed")
    if not parsed:
        return False
    stmt = parsed[0].stmt
    if isinstance(stmt, ast.TransactionStmt):
        keyword = " ".join(statement.split()[:2]).rstrip(";")
        raise reader.fail(line, f"transaction control ({keyword}) is not allowed: the restore runs in one "
                                "transaction")
    _check_lexer_settings(reader, line, statement, stmt)
    return isinstance(stmt, ast.CopyStmt) and bool(stmt.is_from) and stmt.filename is None


def _check_lexer_settings(reader: _Reader, line: int, statement: str, stmt: ast.Node | None) -> None:
    if isinstance(stmt, ast.VariableSetStmt) and stmt.name in _LEXER_SETTINGS:
        values = [str(getattr(getattr(arg, "val", None), "sval", "") or "").lower() for arg in stmt.args or ()]
        safe = values == ["on"] if stmt.name == "standard_conforming_strings" else not (
            set(values) & _UNSAFE_ENCODINGS)
        if not safe:
            raise reader.fail(line, f"SET {stmt.name} to {', '.join(values) or 'default'} is not allowed")
        return
    lowered = statement.lower()
    for name in _LEXER_SETTINGS:
        if name in lowered:
            raise reader.fail(line, f"{name} may only be set with SET; this statement names it")


def _line_of(reader: _Reader, text: str, offset: int) -> int:
    return reader.first_line + text.count("\n", 0, offset)


def _rest_of_line(text: str, offset: int) -> str:
    end = text.find("\n", offset)
    found = text[offset:end if end >= 0 else len(text)].rstrip()
    return found if len(found) <= 60 else found[:60] + "..."
