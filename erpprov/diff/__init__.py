"""The diff for roles, memberships, databases, schemas, extensions and privileges.

Pure functions: desired model + live state (+ the server's canonical spellings, read beforehand)
in, actions out. No I/O here, so every rule is unit-testable without a server. Tables have their
own diff in `erpprov.diff.tables`.
"""

from erpprov.diff.databases import diff_database_contents, diff_databases
from erpprov.diff.privileges import GrantTargetMissing, acl_changes, function_signatures
from erpprov.diff.result import Canon, Planned, Result
from erpprov.diff.roles import diff_roles, passwords_to_compare

__all__ = ["Canon", "GrantTargetMissing", "Planned", "Result", "acl_changes", "diff_database_contents",
           "diff_databases", "diff_roles", "function_signatures", "passwords_to_compare"]
