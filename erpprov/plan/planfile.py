"""The plan as a versioned JSON document: printed by `plan --format json`, saved by `plan -o`, and
read back by `apply FILE`, which runs it only if neither the files nor the live state moved since
(DESIGN decision 3). Writing and reading the format live here together, so they cannot drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from erpprov import __version__
from erpprov.core.actions import Action, HostPlan, execution_order
from erpprov.core.digest import fingerprint
from erpprov.core.display import json_shown
from erpprov.errors import ErpprovError
from erpprov.files.atomic import write_private
from erpprov.load.project import Project
from erpprov.state.snapshot import Snapshot

# Readers accept any 1.x: a minor version only adds keys. A new major version is refused.
FORMAT_VERSION = "1.1"  # 1.1: actions carry their address as kind + parts too
_AGAIN = "create it again with `erpprov plan -o FILE`"

# What apply plans again by itself, so a saved plan's entries of these kinds are not compared.
_PLANNED_BY_APPLY = ("container", "cluster", "file")


class StalePlan(ErpprovError):
    """The files or the live state moved since the plan was saved: nothing was applied."""


def inputs_fingerprint(project: Project) -> str:
    """Digest of the rendered desired state of every target. Secrets count as their masked repr,
    which needs no rendering: a password is rendered only when a plan needs it."""
    return fingerprint([(t.host, t.play.model_dump(), t.connection.model_dump()) for t in project.targets])


def document(plans: list[HostPlan], *, inputs: str = "") -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "erpprov_version": __version__,
        "inputs_fingerprint": inputs,
        "hosts": [
            {
                "host": plan.host,
                "driver": plan.driver,
                "fingerprint": plan.fingerprint,
                "summary": plan.counts(),
                "actions": [a.to_json() for a in plan.ordered()],
                "unmanaged": plan.unmanaged,
                "warnings": plan.warnings,
            }
            for plan in plans
        ],
    }


def dump(doc: dict[str, Any]) -> str:
    """A plan document as the stable text printed and saved (sorted keys: byte-stable)."""
    return json_shown(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)) + "\n"


def write(path: Path, plans: list[HostPlan], *, inputs: str, playbook: Path, inventory: Path,
          limit: str | None) -> None:
    """Save the plan with what `apply FILE` needs to load the same project again; owner-only, as
    it names the servers and their objects."""
    saved = {**document(plans, inputs=inputs), "playbook": str(playbook), "inventory": str(inventory),
             "limit": limit}
    write_private(path, dump(saved))


def read(path: Path) -> dict[str, Any]:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ErpprovError(f"saved plan not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise ErpprovError(f"{path} is not a saved erpprov plan: {exc}") from None
    if not isinstance(saved, dict) or "hosts" not in saved or "playbook" not in saved:
        raise ErpprovError(f"{path} is not a saved erpprov plan", hint="create one with `erpprov plan -o FILE`")
    version = saved.get("format_version")
    if version is None:
        raise ErpprovError(f"{path} has no format_version, so it cannot be read safely", hint=_AGAIN)
    if not isinstance(version, str) or version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise ErpprovError(f"{path} has format_version {json.dumps(version)}; this erpprov reads "
                           f"{FORMAT_VERSION.split('.')[0]}.x", hint=_AGAIN)
    return saved


def host_entry(saved: dict[str, Any], host: str) -> dict[str, Any]:
    entry = next((h for h in saved["hosts"] if h["host"] == host), None)
    if entry is None:
        raise ErpprovError(f"the saved plan has no entry for host {host}")
    return entry


def check_inputs(saved: dict[str, Any], project: Project) -> None:
    if saved.get("inputs_fingerprint") != inputs_fingerprint(project):
        raise StalePlan("the playbook, inventory or variables changed since the plan was saved; "
                        "nothing was applied", hint="run `erpprov plan -o FILE` again and review it")


def check_host(entry: dict[str, Any], shown: list[Action], snapshot: Snapshot) -> None:
    """``shown``: the server's actions planned again inside the apply lock, as a plan shows them."""
    host = entry.get("host")
    if entry.get("fingerprint") != snapshot.digest():
        raise StalePlan(f"host {host}: the live state changed since the plan was saved; nothing was applied",
                        hint="run `erpprov plan -o FILE` again and review the new plan")
    planned = [a for a in entry.get("actions", []) if a.get("kind") not in _PLANNED_BY_APPLY]
    if planned != [a.to_json() for a in execution_order(shown)]:
        raise StalePlan(f"host {host}: the actions differ from the saved plan; nothing was applied",
                        hint="the playbook or its variables changed; run `erpprov plan -o FILE` again")
