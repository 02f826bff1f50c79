"""Scripts to run, from the play's scripts and the database's journal (pure, no I/O).

`once` runs when the journal does not know the script; a `once` script whose text changed since
is reported (as Flyway's validate does), never run again. `on_change` runs again when its
checksum moved; `always` runs on every apply, so it never counts against convergence.
"""

from __future__ import annotations

from erpprov.core import model
from erpprov.core.actions import Action, Op, Phase
from erpprov.core.address import Address
from erpprov.core.scripts import JournalEntry, checksum
from erpprov.diff.result import Result
from erpprov.postgres.script_ddl import run_script


def diff_scripts(database: str, scripts: list[model.Script], journal: dict[str, JournalEntry]) -> Result:
    result = Result()
    for order, script in enumerate(scripts):
        digest = checksum(script.text)
        ran = journal.get(script.name)
        address = Address("script", database, script.name)
        if ran is not None and ran.checksum == digest and script.run != "always":
            continue
        if ran is not None and script.run == "once":
            if ran.checksum != digest:
                result.warnings.append(f"{address}: changed since it ran at {ran.applied_at}; a `once` script is not "
                                       "run again (rename it, or make it run: on_change)")
            continue
        note = "runs on every apply" if script.run == "always" else (
            "its text changed since it ran at " + ran.applied_at if ran is not None else "has not run here yet")
        result.actions.append(Action(
            address=address, op=Op.CREATE if ran is None else Op.UPDATE, phase=Phase.SCRIPT, database=database,
            sql=tuple(run_script(script.name, script.text, digest)), after={"run": script.run, "checksum": digest},
            note=note, repeats=script.run == "always", order=order))
    return result
