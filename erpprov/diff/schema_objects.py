"""The schema objects beside tables that the files leave alone: listed as unmanaged, never dropped
unasked (decision 6). Kinds erpprov manages take the addresses they manage out of the list."""

from __future__ import annotations

from collections.abc import Collection

from erpprov.core.address import Address
from erpprov.core.schema_objects import SchemaObjects


def unmanaged_objects(live: SchemaObjects, database: str, managed: Collection[Address] = ()) -> list[Address]:
    """The live objects of ``database`` whose address is not ``managed``, in the order they were read."""
    kept = set(managed)
    return [address for address in (o.address(database) for o in live.objects) if address not in kept]
