"""The diff of standalone sequences (pure). Options the file leaves out are PostgreSQL's defaults
for the type and direction, so an omitted bound is as exact as a written one. Changing `start`
sets what a RESTART would go back to; the current value is never touched."""

from __future__ import annotations

from dataclasses import replace

from erpprov.core import model
from erpprov.core.actions import Action, Op, Phase
from erpprov.core.address import Address
from erpprov.core.schema_objects import SequenceState
from erpprov.diff.result import Result
from erpprov.diff.schema_objects import owner_and_comment, renamed
from erpprov.postgres import schema_ddl as ddl
from erpprov.postgres.ddl import render

# The range of each sequence type (CREATE SEQUENCE's defaults are its ends, or 1 and -1).
_RANGE = {"smallint": (-(2 ** 15), 2 ** 15 - 1), "integer": (-(2 ** 31), 2 ** 31 - 1),
          "bigint": (-(2 ** 63), 2 ** 63 - 1)}
OPTIONS = ("type", "start", "increment", "min_value", "max_value", "cache", "cycle")


def desired_sequence(declared: model.Sequence) -> SequenceState:
    """The sequence as the server will hold it: every omitted option at PostgreSQL's default."""
    low, high = _RANGE[declared.type]
    ascending = declared.increment > 0
    min_value = declared.min_value if declared.min_value is not None else (1 if ascending else low)
    max_value = declared.max_value if declared.max_value is not None else (high if ascending else -1)
    start = declared.start if declared.start is not None else (min_value if ascending else max_value)
    owned = declared.owned_by
    owned_by = (owned.schema_ or declared.schema_, owned.table, owned.column) if owned else None
    return SequenceState(declared.schema_, declared.name, declared.type, start, declared.increment, min_value,
                         max_value, declared.cache, declared.cycle, owned_by, declared.owner, declared.comment,
                         declared.renamed_from)


def _options(seq: SequenceState) -> dict[str, object]:
    return {k: getattr(seq, k) for k in OPTIONS}


def diff_sequences(declared: list[model.Sequence], live: dict[tuple[str, str], SequenceState],
                   database: str) -> Result:
    result = Result()
    for want in map(desired_sequence, declared):
        address = Address("sequence", database, want.schema, want.name)
        have, rename = renamed("SEQUENCE", want.schema, want.name, want.renamed_from, live)
        if have is None:
            extra, _, after = owner_and_comment("SEQUENCE", want.schema, want.name, want.owner, want.comment,
                                                None, None)
            result.actions.append(Action(address, Op.CREATE, Phase.SEQUENCE, database=database,
                                         sql=tuple(render(s) for s in [ddl.create_sequence(want), *extra]),
                                         after={**_options(want), **after}))
            have = replace(want, owned_by=None)
        else:
            statements = list(rename)
            before: dict[str, object] = {"name": have.name} if rename else {}
            after = {"name": want.name} if rename else {}
            if _options(have) != _options(want):
                statements.append(ddl.alter("SEQUENCE", want.schema, want.name, ddl.sequence_options(want)))
                before |= {k: v for k, v in _options(have).items() if v != getattr(want, k)}
                after |= {k: getattr(want, k) for k in before if k != "name"}
            extra, was, now = owner_and_comment("SEQUENCE", want.schema, want.name, want.owner, want.comment,
                                                have.owner, have.comment)
            statements += extra
            before |= was
            after |= now
            if statements:
                result.actions.append(Action(address, Op.UPDATE, Phase.SEQUENCE, database=database,
                                             sql=tuple(render(s) for s in statements), before=before, after=after))
        if have.owned_by != want.owned_by:
            result.actions.append(Action(
                Address("sequence_owner", database, want.schema, want.name), Op.UPDATE, Phase.SEQUENCE_OWNER,
                database=database, sql=(render(ddl.owned_by(want)),),
                before={"owned_by": ".".join(have.owned_by) if have.owned_by else None},
                after={"owned_by": ".".join(want.owned_by) if want.owned_by else None}))
    return result
