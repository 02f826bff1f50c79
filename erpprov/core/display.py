r"""Names and values as output may quote them: control characters made visible.

Names come from the files and from the live server, where any role may create a table called
"x\x1b[2K" or one holding a newline and a code fence. Printed raw, an ANSI sequence erases the
hazard tag beside it, a carriage return overwrites the line, a newline forges lines of its own,
and bidirectional overrides reorder what a reviewer reads. Every renderer passes such text
through `shown` (or `shown_lines`, for messages whose own line breaks are structure).
"""

from __future__ import annotations

import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# DEL and the C1 controls (0x9b is CSI to some terminals); the bidirectional marks, embeddings,
# overrides and isolates ("Trojan Source"); line and paragraph separators, which some viewers
# break lines at. With the C0 controls, what `shown` escapes.
_BEYOND_ASCII = "\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f{_BEYOND_ASCII}]")
_UNSAFE_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{_BEYOND_ASCII}]")
_BEYOND_JSON = re.compile(f"[{_BEYOND_ASCII}]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) <= 0xFF else f"\\u{ord(char):04x}"


def shown(text: str) -> str:
    """``text`` on one line, every control character written as its escape (ESC as \\x1b)."""
    return _UNSAFE.sub(_escape, text)


def shown_lines(text: str) -> str:
    """Like `shown`, but line breaks stay: for a whole message, whose lines are its structure."""
    return _UNSAFE_BUT_NEWLINE.sub(_escape, text)


def json_shown(dumped: str) -> str:
    """JSON text from json.dumps(..., ensure_ascii=False) with what it leaves raw (DEL, C1,
    bidirectional controls) as \\u escapes: the same data, safe to print. Such characters can only
    stand inside strings, where the escape means the character itself."""
    return _BEYOND_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)
