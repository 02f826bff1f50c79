"""What one plan read from a server, kept so that apply can tell whether it moved since."""

from __future__ import annotations

from dataclasses import dataclass, field

from erpprov.core.cluster import LiveCluster, LiveDatabase
from erpprov.core.digest import fingerprint
from erpprov.core.schema_objects import SchemaObjects
from erpprov.core.tables import TablesState


@dataclass
class Snapshot:
    """What was read from one server, kept so apply can compare it with what the plan saw."""

    cluster: LiveCluster | None = None
    databases: dict[str, LiveDatabase] = field(default_factory=dict)
    tables: dict[str, TablesState] = field(default_factory=dict)
    schema_objects: dict[str, SchemaObjects] = field(default_factory=dict)

    def digest(self) -> str:
        redacted = self.cluster.__dict__ | {"passwords": None} if self.cluster else None
        return fingerprint({"cluster": redacted, "databases": self.databases, "tables": self.tables,
                            "schema_objects": self.schema_objects})
