"""What PostgreSQL grants without being asked, and how it rewrites an ACL.

These are facts about the server, not choices of erpprov: the diff needs them to know what a
grantee holds before and after an apply, and export to leave out what PostgreSQL would give
anyway. Both read them here, so the two can never disagree about a NULL ACL.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

from erpprov.core import model
from erpprov.core.cluster import PUBLIC, DefaultAclKey, LiveDatabase, ObjectRef, Privileges

_Object = TypeVar("_Object", bound=Hashable)  # an ObjectRef, or a database's name in the cluster's ACL

# ALTER DEFAULT PRIVILEGES ... ON <word>: the kind of object each word is about.
DEFAULT_PRIVILEGE_KIND = {"tables": "table", "sequences": "sequence", "functions": "function", "types": "type",
                          "schemas": "schema"}


def all_privileges(kind: str, server_version: int) -> tuple[str, ...]:
    """What ALL stands for on ``kind``: the playbook's vocabulary, plus MAINTAIN on tables from 17."""
    privileges = model.PRIVILEGES[kind]
    if kind == "table" and server_version >= 170000:
        privileges = privileges + ("MAINTAIN",)
    return privileges


def expand(privileges: Iterable[str], kind: str, server_version: int, grantable: bool) -> Privileges:
    """``privileges`` as the ACL entries they grant, ALL spelled out."""
    names: set[str] = set()
    for privilege in privileges:
        names.update(all_privileges(kind, server_version) if privilege == "ALL" else (privilege,))
    return frozenset((name, grantable) for name in names)


def implicit_acl(kind: str, owner: str, grantee: str, server_version: int) -> Privileges:
    """acldefault(): what an object's NULL ACL stands for."""
    if grantee == owner:
        return frozenset((p, False) for p in all_privileges(kind, server_version))
    if grantee == PUBLIC:
        return frozenset({"database": {("CONNECT", False), ("TEMPORARY", False)},
                          "function": {("EXECUTE", False)}, "type": {("USAGE", False)}}.get(kind, set()))
    return frozenset()


def initdb_acl(kind: str, name: str, grantee: str, server_version: int) -> Privileges:
    """What initdb grants beyond acldefault(): the `public` schema's USAGE to PUBLIC (and CREATE
    before PostgreSQL 15, which took it away); nothing on anything else."""
    if kind != "schema" or name != "public" or grantee != PUBLIC:
        return frozenset()
    return frozenset({("USAGE", False)} | ({("CREATE", False)} if server_version < 150000 else set()))


def owner_transferred(acl: dict[tuple[_Object, str], Privileges],
                      changes: dict[_Object, tuple[str, str]]) -> dict[tuple[_Object, str], Privileges]:
    """``acl`` once ALTER ... OWNER TO has run for each object in ``changes`` (old owner, new owner).

    PostgreSQL rewrites the ACL rather than keeping it: every entry of the old owner becomes the new
    owner's, merged with what the new owner held (grant options OR-ed); a NULL ACL, read as
    acldefault(), stays NULL and so follows the new owner just the same."""
    if not changes:
        return acl
    moved = dict(acl)
    for obj, (old, new) in changes.items():
        merged: dict[str, bool] = {}
        for privilege, grantable in moved.pop((obj, old), frozenset()) | moved.get((obj, new), frozenset()):
            merged[privilege] = merged.get(privilege, False) or grantable
        if merged:
            moved[(obj, new)] = frozenset(merged.items())
    return moved


def new_object_acl(ref: ObjectRef, owner: str, grantee: str, live: LiveDatabase, server_version: int) -> Privileges:
    """The ACL a new object will start with: the owner's database-wide default privileges (or
    acldefault() when there are none), plus those for its schema."""
    on = ref.kind + "s"
    if DefaultAclKey(owner, None, on, "") in live.default_acl:
        base = live.default_acl.get(DefaultAclKey(owner, None, on, grantee), frozenset())
    else:
        base = implicit_acl(ref.kind, owner, grantee, server_version)
    if ref.kind == "schema":
        return base
    return base | live.default_acl.get(DefaultAclKey(owner, ref.schema, on, grantee), frozenset())
