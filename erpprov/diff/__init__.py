"""The diff for roles, memberships, databases, schemas, extensions and privileges.

Pure functions: desired model + live state (+ the server's canonical spellings, read beforehand)
in, actions out. No I/O here, so every rule is unit-testable without a server. Tables have their
own diff in `erpprov.diff.tables`.
"""

from erpprov.diff.databases import diff_database_contents, diff_databases
from erpprov.diff.privileges import GrantTargetMissing, acl_changes, function_signatures
from erpprov.diff.result import Canon, Planned, Result
from erpprov.diff.roles import diff_roles, passwords_to_compare

__all__ = ["Canon", "Planned", "Result", "diff_database_contents", "diff_databases", "GrantTargetMissing",
           "acl_changes", "function_signatures", "diff_roles", "passwords_to_compare"]
