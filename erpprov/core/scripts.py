"""A script's identity in the journal: the checksum of its text, and what the journal holds."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class JournalEntry:
    checksum: str
    applied_at: str


def checksum(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
