"""Which rendered text depends on a secret, whatever a template did with it.

A secret source is a variable named like a secret (`core.secrets`: pg_password, app_token, ...), `env` (the
environment and `.env`), and lookup('env'/'file'). Every value is rendered twice: once for real,
once with each secret source replaced by a canary, a distinct word of letters and digits that
filters leave recognisable (tojson, urlencode, escaping) or only change in case (upper). Text that
reads the same both times does not depend on a secret; text that differs does, however it was
transformed (base64, reversed, a slice...), and is hidden. Where the canary shows through, only
its place is hidden and the text around it, proven the same under two secrets, stays visible.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

from erpprov.core.actions import SENSITIVE, Action
from erpprov.core.secrets import is_secret_name
from erpprov.errors import ErpprovError
from erpprov.load.templating import LazyVars

if TYPE_CHECKING:
    from erpprov.core.target import Target

_CANARY = re.compile(r"zq[0-9a-f]{16}qz", re.IGNORECASE)
_KEY = re.compile(r"^(\s*[^=:\s]+\s*[=:]\s*)")


def canary(source: str) -> str:
    return "zq" + hashlib.sha256(source.encode()).hexdigest()[:16] + "qz"


def _canary_lookup(kind: str, name: str) -> str:
    return canary(f"lookup:{kind}:{name}")


def shadow(variables: LazyVars) -> LazyVars:
    """``variables`` with every secret source replaced by its canary; the other variables render
    anew from their templates, so a value derived from a secret carries the canary too."""
    raw = {k: canary(f"var:{k}") if is_secret_name(k) else v for k, v in variables.raw.items()}
    fixed = dict(variables.fixed)
    env = fixed.get("env")
    if isinstance(env, dict):
        fixed["env"] = {k: _canary_lookup("env", k) for k in env}
    fixed["lookup"] = _canary_lookup  # read before Jinja2's globals, where the real lookup is
    return LazyVars(raw, fixed)


def masked_line(real: str, shadowed: str | None) -> str:
    """``real`` as it may be shown, given the same line rendered with canaries (None: no line
    corresponds to it there)."""
    if shadowed is None:
        return SENSITIVE
    if real == shadowed:
        return real
    segments = _CANARY.split(shadowed)
    if len(segments) > 1:
        pattern = "(.*?)".join(re.escape(s) for s in segments)
        if re.fullmatch(pattern, real, flags=re.DOTALL):
            return SENSITIVE.join(segments)
    key, shadow_key = _KEY.match(real), _KEY.match(shadowed)
    if key and shadow_key and key.group(1) == shadow_key.group(1):
        return key.group(1) + SENSITIVE  # the key reads the same under both: it is no secret
    return SENSITIVE


def key_of(line: str) -> str | None:
    match = _KEY.match(line)
    return match.group(1) if match else None


def _forms(value: str) -> list[str]:
    """A known secret as text may spell it: itself, URL-encoded, JSON-escaped, as an SQL literal."""
    quoted = value.replace("'", "''")
    return list(dict.fromkeys((value, quote(value), quote(value, safe=""), quote_plus(value),
                               json.dumps(value, ensure_ascii=False)[1:-1], quoted, quoted.replace("\\", "\\\\"))))


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` (a string, or lists and mappings of them) with each known secret hidden where it
    stands as a word of its own ("postgres" is no secret inside "postgresql"), in any letter case:
    the server folds an unquoted name to lower case when it quotes one back in an error."""
    if isinstance(value, str):
        pattern = _pattern(frozenset(secrets))
        return pattern.sub(SENSITIVE, value) if pattern else value
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v, secrets) for v in value)
    return value


@functools.lru_cache(maxsize=64)
def _pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    """One pattern for every spelling of every secret, longest first (a secret holding another is
    hidden whole); built once per set of secrets, not per string redacted."""
    forms = sorted({form for secret in secrets for form in _forms(secret)}, key=len, reverse=True)
    if not forms:
        return None
    alternatives = "|".join(re.escape(form) for form in forms)
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.IGNORECASE)


def hide_secrets(error: ErpprovError, target: Target) -> ErpprovError:
    """``error`` with what a plan would hide hidden in its message and hint too: a message can
    quote a value rendered from a secret (a type the server rejects, a name it cannot find). The
    error keeps its type and what it carries (an apply's report): only its words change."""
    secrets = known_secrets(target)
    error.message, error.hint = redact(error.message, secrets), redact(error.hint, secrets)
    error.args = (error.message,)
    return error


def known_secrets(target: Target) -> list[str]:
    """The values a plan hides wherever they appear: play values rendered from a secret, and the
    roles' passwords (which may come from a variable of any name)."""
    values = set(target.secrets)
    for role in target.play.roles:
        with suppress(ErpprovError):  # rendered when needed; a template using it fails on its own
            values.add(role.password.get_secret_value() if role.password is not None else "")
    # pg_password is not listed: its name makes it a secret source already, and its common default
    # ("postgres") would hide the admin's name everywhere.
    return [v for v in values if len(v) >= 3]


def redact_actions(actions: list[Action], secrets: list[str]) -> list[Action]:
    """``actions`` as a plan shows and saves them: known secrets hidden in values, notes and SQL."""
    if not secrets:
        return actions
    return [replace(a, before=_before(a.before, a.after, secrets), after=redact(a.after, secrets),
                    note=redact(a.note, secrets),
                    sql=tuple(replace(s, shown=redact(s.display, secrets)) if redact(s.display, secrets) != s.display
                              else s for s in a.sql)) for a in actions]


def _before(before: dict[str, Any] | None, after: dict[str, Any] | None, secrets: list[str]) -> Any:
    """The live values replaced by a secret were most likely the previous secret (a comment that
    quotes the rotated password): they are hidden whole."""
    if before is None:
        return None
    hidden = {k for k, v in (after or {}).items() if redact(v, secrets) != v}
    return {k: SENSITIVE if k in hidden and v is not None else redact(v, secrets) for k, v in before.items()}
