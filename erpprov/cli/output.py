"""How commands talk to a person: colour only on a terminal, typed confirmations."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from erpprov.core.display import shown


def colour(no_color: bool) -> bool:
    import os

    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


EVENT_COLOURS = {"ok": "green", "changed": "yellow", "failed": "red", "undone": "magenta"}


def confirm_hazards(say: Callable[[str], None]) -> Callable[[list[Any]], bool]:
    """On a terminal, hazards not allowed by flags can be allowed by typing 'yes'."""
    import threading

    lock = threading.Lock()  # one question at a time, whatever the number of hosts

    def confirm(refused: list[Any]) -> bool:
        with lock:
            say("These changes are hazardous:")
            for action, hazard in refused:
                say(f"  {shown(action.address)} ({hazard.value}){': ' + shown(action.note) if action.note else ''}")
            return click.prompt("Type 'yes' to apply them", default="", show_default=False) == "yes"

    return confirm
