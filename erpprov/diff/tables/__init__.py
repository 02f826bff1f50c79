"""The table diff: desired state against live state, into plan actions. Pure: no I/O.

Ownership rules (docs/design.md, decision 6):
* tables and columns the file does not mention are reported as unmanaged and left alone, unless
  their schema is in `prune_schemas`, in which case they are dropped (DELETES_DATA);
* a declared table's keys, checks, foreign keys and indexes are exactly what the file says: others
  are dropped (that deletes no data), except those that involve a column left alone as unmanaged.

Matching (`match`): a declared name matches by name; an unnamed object first matches a live one of
the same shape. Renames (`renames`) are declared (`renamed_from`), never guessed.

Order (`emit`): within a phase actions are emitted in dependency order: table renames, column
renames, then creates; foreign keys that must go before a key they reference is replaced are
dropped at the head of the CONSTRAINT phase; foreign keys are created in FOREIGN_KEY, after every
table and key exists (which also resolves cycles); drops of foreign keys precede the drops of the
keys and tables they reference.

The steps run in that order because each needs what the one before found out: the renames give
the pairs; which keys break decides where foreign keys are dropped; the column changes of every
table (which columns change type) decide it too, so foreign keys come after all tables.
"""

from __future__ import annotations

from collections.abc import Collection

from erpprov.core.address import Address
from erpprov.core.tables import TableDiff, TablesState
from erpprov.diff.tables.context import Context
from erpprov.diff.tables.emit import Emitter
from erpprov.diff.tables.foreign_keys import broken_keys, diff_foreign_keys
from erpprov.diff.tables.renames import pair_tables
from erpprov.diff.tables.repartition import repartition, repartitions
from erpprov.diff.tables.table import create_table, is_same, prune_tables, update_table

__all__ = ["diff_tables"]


def diff_tables(desired: TablesState, live: TablesState, *, database: str,
                prune_schemas: Collection[str] = ()) -> TableDiff:
    ctx = Context(desired, live, database, set(prune_schemas), Emitter(database))
    pairs = pair_tables(ctx)
    ctx.same = {want.key for want, have in pairs if have is not None and is_same(want, have)}
    broken = broken_keys(ctx, pairs)
    for want, have in pairs:
        if have is None:
            create_table(ctx, want)
            continue
        if repartitions(want, have):
            repartition(ctx, want, have)
        elif want.key not in ctx.same:
            update_table(ctx, want, have)
        # what erpprov reads but does not manage is listed, never silently kept
        ctx.unmanaged.extend(Address("property", database, want.schema, want.name, name) for name in have.unmanaged)
    # a rebuilt table's foreign keys are a new table's
    diff_foreign_keys(ctx, [(want, None if repartitions(want, have) else have) for want, have in pairs], broken)
    prune_tables(ctx, broken)
    return TableDiff(ctx.out.actions(), ctx.unmanaged)
