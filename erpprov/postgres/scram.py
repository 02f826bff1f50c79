"""Password verifiers, computed and checked on the client.

erpprov sends PostgreSQL a SCRAM-SHA-256 verifier, never the clear text, so the password cannot
appear in the server's log; and it compares the desired password with the stored verifier instead
of re-setting it on every run (which would report "changed" forever).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import stringprep
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from erpprov.core.actions import Statement
from erpprov.postgres.ddl import literal, text

ITERATIONS = 4096  # PostgreSQL's default scram_iterations


def _saslprep(password: str) -> bytes:
    """RFC 4013 SASLprep as PostgreSQL applies it: if the result would be invalid, the raw bytes
    are used instead, exactly as the server does (pg_saslprep returning SASLPREP_PROHIBITED)."""
    if password.isascii():
        return password.encode()
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in password if not stringprep.in_table_b1(ch)
    )
    normalized = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3, stringprep.in_table_c4,
        stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
        stringprep.in_table_c9, stringprep.in_table_a1,
    )
    if not normalized or any(check(ch) for ch in normalized for check in prohibited):
        return password.encode()
    if any(stringprep.in_table_d1(ch) for ch in normalized):
        if not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1])):
            return password.encode()
        if any(stringprep.in_table_d2(ch) for ch in normalized):
            return password.encode()
    return normalized.encode()


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key


def scram_verifier(password: str) -> str:
    salt, iterations = os.urandom(16), ITERATIONS
    stored, server = _keys(password, salt, iterations)
    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server)}"


def executable(statement: Statement) -> str:
    """The text to send for ``statement``: one that sets a password gets its verifier now, with a
    fresh salt, so a plan never holds one and the server never sees the clear text."""
    if statement.password is None:
        return statement.text
    return statement.text + text(literal(scram_verifier(statement.password.get_secret_value())))


def password_matches(password: str, stored: str, role: str) -> bool:
    """Whether ``password`` is the one ``stored`` (a SCRAM verifier or an md5 hash) was made from."""
    if stored.startswith("SCRAM-SHA-256$"):
        try:
            head, keys = stored[len("SCRAM-SHA-256$"):].split("$", 1)
            iterations_text, salt_b64 = head.split(":", 1)
            stored_b64, server_b64 = keys.split(":", 1)
            salt = base64.b64decode(salt_b64)
            expected = (base64.b64decode(stored_b64), base64.b64decode(server_b64))
            iterations = int(iterations_text)
        except ValueError:
            return False
        return all(hmac.compare_digest(a, b) for a, b in zip(_keys(password, salt, iterations), expected, strict=True))
    if stored.startswith("md5") and len(stored) == 35:
        digest = hashlib.md5((password + role).encode()).hexdigest()
        return hmac.compare_digest("md5" + digest, stored)
    return False


def _yield_to_caller() -> None:
    """The checks run while the caller reads the catalogs, which is what the plan waits for: at a
    lower priority they take the time it leaves idle instead of competing for it (one worker
    per core less one left it waiting for the checks at the end). Linux only: there a thread
    has a nice value of its own; elsewhere the same call would renice a process."""
    if sys.platform.startswith("linux"):
        thread = threading.get_native_id()
        # relative to the caller's own (inherited): setpriority sets an absolute value
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + 10))


@contextmanager
def matching_passwords_started(candidates: Mapping[str, tuple[str, str]]) -> Iterator[Callable[[], dict[str, bool]]]:
    """Start checking, for each role, whether its (password, stored verifier) pair matches; the
    callable waits for the outcome, role name -> bool. PBKDF2 releases the GIL, so the checks run
    on every core (a few hundred roles take most of a second on one) while the caller goes on.
    Once the caller waits, it runs the checks not yet begun itself, at its own priority: on a
    busy machine the lowered workers may get little of a core, and the caller has nothing else
    left to do. Leaving the block drops the checks not yet begun."""
    if not candidates:
        yield dict
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    pool = ThreadPoolExecutor(max_workers=min(len(candidates), cores), initializer=_yield_to_caller)
    checks = {role: pool.submit(password_matches, password, stored, role)
              for role, (password, stored) in candidates.items()}

    def outcome() -> dict[str, bool]:
        # From the end, while the workers take from the front: a check the pool has not started is
        # cancelled and run here, one it runs is waited for.
        found = {role: password_matches(*candidates[role], role) if check.cancel() else check.result()
                 for role, check in reversed(checks.items())}
        return {role: found[role] for role in checks}

    try:
        yield outcome
    finally:
        pool.shutdown(cancel_futures=True)


def matching_passwords(candidates: Mapping[str, tuple[str, str]]) -> dict[str, bool]:
    """Role name -> whether its (password, stored verifier) pair matches."""
    with matching_passwords_started(candidates) as outcome:
        return outcome()
