"""Parse a `.env` file the way docker compose and python-dotenv users expect."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from erpprov.errors import ErpprovError, Location
from erpprov.load.reading import read_regular

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*?)\s*$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def _to_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def parse_env(text: str, file: str = ".env", warn: Callable[[str], None] = _to_stderr) -> dict[str, str]:
    """KEY=VALUE lines; `export ` prefixes, comments, single and double quotes (with escapes).
    A key set twice keeps the later value, as docker compose and python-dotenv read it, and is
    reported through ``warn``: one of the two lines is a mistake the user should hear about."""
    result: dict[str, str] = {}
    first_line: dict[str, int] = {}
    # Editors on Windows save UTF-8 with a byte order mark; it is not part of the first name.
    text = text.removeprefix("\ufeff")
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ErpprovError(
                "expected KEY=VALUE",
                location=Location(file, number, 1),
                hint="names start with a letter or _, e.g. POSTGRES_PASSWORD=secret",
            )
        key, raw = match.groups()
        result[key] = _value(raw, Location(file, number, line.index("=") + 2))
        if key in first_line:
            warn(f"{file}:{number}: {key} is set again (first at line {first_line[key]}); "
                 f"the value of line {number} is used")
        first_line.setdefault(key, number)
    return result


def _value(raw: str, where: Location) -> str:
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = _closing_quote(raw, quote)
        if end is None:
            raise ErpprovError(f"unterminated {quote} quote", location=where)
        rest = raw[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise ErpprovError("unexpected text after the closing quote", location=where)
        body = raw[1:end]
        return _unescape(body) if quote == '"' else body
    # Unquoted: an inline comment needs a space before '#', so "pa#ss" stays a value.
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def _closing_quote(raw: str, quote: str) -> int | None:
    i = 1
    while i < len(raw):
        if raw[i] == "\\" and quote == '"':
            i += 2
            continue
        if raw[i] == quote:
            return i
        i += 1
    return None


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)


MAX_BYTES = 1024 * 1024  # far more than any .env; a FIFO or /dev/zero in its place must not hang a run


def load_env_file(path: Path) -> dict[str, str]:
    """A missing .env is normal (it is not committed); an unreadable one is an error."""
    try:
        raw = read_regular(path, MAX_BYTES)
        if len(raw) > MAX_BYTES:
            raise ErpprovError(f"cannot read {path}: larger than {MAX_BYTES // 1024} KiB")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ErpprovError(f"cannot read {path}: {exc}") from None
    return parse_env(text, str(path))
