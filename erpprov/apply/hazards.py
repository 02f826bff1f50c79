"""The hazards gate (DESIGN decision 6): actions whose hazards were not allowed stop an apply
before anything changes. The refusal is data (which action, which hazard): how to allow them is
the caller's to say, in its own words (the CLI names its flags)."""

from __future__ import annotations

from collections.abc import Callable

from erpprov.core.actions import Action, Hazard
from erpprov.core.display import shown
from erpprov.errors import ErpprovError

# Asked, when given, whether hazards not allowed may go ahead anyway (a typed confirmation).
Confirm = Callable[[list[tuple[Action, Hazard]]], bool]


class HazardsRefused(ErpprovError):
    def __init__(self, refused: list[tuple[Action, Hazard]]):
        # One line per refusal: a name holding a newline must not forge a line of its own.
        lines = "\n".join(f"  {shown(a.address)} ({h.value}){': ' + shown(a.note) if a.note else ''}"
                          for a, h in refused)
        super().__init__(f"apply refuses {len(refused)} hazardous change(s); nothing was changed:\n{lines}")
        self.refused = refused

    @property
    def hazards(self) -> list[Hazard]:
        """The kinds refused, each once, in a stable order."""
        return sorted({h for _, h in self.refused}, key=lambda h: h.value)


def check_hazards(actions: list[Action], allowed: frozenset[Hazard], confirm: Confirm | None) -> None:
    refused = [(a, h) for a in actions for h in a.hazards if h not in allowed]
    if refused and not (confirm is not None and confirm(refused)):
        raise HazardsRefused(refused)
