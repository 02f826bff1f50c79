"""What the diff modules share: their result type and the server's canonical spellings."""

from __future__ import annotations

from dataclasses import dataclass, field

from erpprov.core.actions import Action
from erpprov.core.address import Address

Planned = dict[str, dict[tuple[str, str], str | None]]  # kind -> {(schema, name): owner, None: admin}


@dataclass
class Canon:
    """Spellings the server canonicalized before the diff (read-only SELECTs)."""

    timestamps: dict[str, str] = field(default_factory=dict)
    functions: dict[str, tuple[str, str] | None] = field(default_factory=dict)
    # Whether each role of `passwords_to_compare` has the password its stored verifier was made
    # from (checked beforehand: PBKDF2 is the slowest step of a plan).
    passwords: dict[str, bool] = field(default_factory=dict)
    # The declared functions and procedures (by position in functions + procedures) that the scratch
    # build named: (schema, signature), as grants and the ACL read spell them.
    declared_functions: dict[int, tuple[str, str]] = field(default_factory=dict)


@dataclass
class Result:
    actions: list[Action] = field(default_factory=list)
    unmanaged: list[Address] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: Result) -> None:
        self.actions.extend(other.actions)
        self.unmanaged.extend(other.unmanaged)
        self.warnings.extend(other.warnings)


def comment_changes(wanted: str | None, current: str | None) -> bool:
    """A comment is managed only when the file states one; an empty one removes it."""
    return wanted is not None and (wanted or None) != current
