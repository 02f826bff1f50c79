"""The diff for roles, memberships, databases, schemas, extensions and privileges.

Pure functions: desired model + live state (+ the server's canonical spellings, read beforehand)
in, actions out. No I/O here, so every rule is unit-testable without a server.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field

from psycopg import sql

from erpprov import model
from erpprov.ddl import (
    canonical_setting,
    grantee,
    ident,
    literal,
    object_clause,
    privilege_list,
    setting_value,
    text,
)
from erpprov.plan import Action, Hazard, Op, Phase, Statement
from erpprov.scram import password_matches, scram_verifier
from erpprov.state import (
    PUBLIC,
    ROLE_FLAGS,
    DefaultAclKey,
    LiveCluster,
    LiveDatabase,
    Member,
    ObjectRef,
    Privileges,
    RoleState,
)

SENSITIVE = "(sensitive)"
SYSTEM_DATABASES = {"postgres", "template0", "template1"}
_DEFACL_KIND = {"tables": "table", "sequences": "sequence", "functions": "function", "types": "type",
                "schemas": "schema"}


Planned = dict[str, dict[tuple[str, str], str | None]]  # kind -> {(schema, name): owner, None: admin}


@dataclass
class Canon:
    """Spellings the server canonicalized before the diff (read-only SELECTs)."""

    timestamps: dict[str, str] = field(default_factory=dict)
    functions: dict[str, tuple[str, str] | None] = field(default_factory=dict)


@dataclass
class Result:
    actions: list[Action] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: Result) -> None:
        self.actions.extend(other.actions)
        self.unmanaged.extend(other.unmanaged)
        self.warnings.extend(other.warnings)


def all_privileges(kind: str, server_version: int) -> tuple[str, ...]:
    privileges = model.PRIVILEGES[kind]
    if kind == "table" and server_version >= 170000:
        privileges = privileges + ("MAINTAIN",)
    return privileges


def expand(privileges: Iterable[str], kind: str, server_version: int, grantable: bool) -> Privileges:
    names: set[str] = set()
    for privilege in privileges:
        names.update(all_privileges(kind, server_version) if privilege == "ALL" else (privilege,))
    return frozenset((name, grantable) for name in names)


# --- roles ----------------------------------------------------------------------------------


def desired_role(role: model.Role, canon: Canon) -> RoleState:
    until = role.valid_until
    return RoleState(
        name=role.name, login=role.login, superuser=role.superuser, createdb=role.createdb,
        createrole=role.createrole, inherit=role.inherit, replication=role.replication, bypassrls=role.bypassrls,
        connection_limit=role.connection_limit,
        valid_until=canon.timestamps.get(until, until) if until is not None else None,
        settings=tuple(sorted((k, canonical_setting(v)) for k, v in role.settings.items())),
        comment=role.comment,
        members=tuple(sorted((Member(m.role, m.admin, m.inherit, m.set) for m in role.member_of),
                             key=lambda m: m.role)),
    )


def comment_changes(wanted: str | None, current: str | None) -> bool:
    """A comment is managed only when the file states one; an empty one removes it."""
    return wanted is not None and (wanted or None) != current


def _role_options(state: RoleState, attributes: Iterable[str]) -> list[sql.Composable]:
    parts: list[sql.Composable] = []
    for attr in attributes:
        if attr in ROLE_FLAGS:
            parts.append(sql.SQL(("" if getattr(state, attr) else "NO") + attr.upper()))
        elif attr == "connection_limit":
            parts.append(sql.SQL("CONNECTION LIMIT {}").format(literal(state.connection_limit)))
        elif attr == "valid_until":
            parts.append(sql.SQL("VALID UNTIL {}").format(literal(state.valid_until or "infinity")))
    return parts


def diff_roles(play: model.Play, live: LiveCluster, canon: Canon) -> Result:
    result = Result()
    declared = {r.name for r in play.roles}
    for role in play.roles:
        if role.state == "absent":
            if role.name in live.roles:
                result.actions.extend(drop_role(role.name, live))
            continue
        result.extend(_diff_role(role, desired_role(role, canon), live))
    for name in sorted(live.roles):
        if name in declared or name == live.current_user:
            continue
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in play.prune_roles):
            result.actions.extend(drop_role(name, live))
        else:
            result.unmanaged.append(f"role.{name}")
    return result


def _diff_role(role: model.Role, want: RoleState, live: LiveCluster) -> Result:
    result = Result()
    have = live.roles.get(role.name)
    address = f"role.{role.name}"
    name = ident(role.name)
    if not live.is_superuser and (want.superuser or want.replication or want.bypassrls) and (
        have is None or not (have.superuser == want.superuser and have.replication == want.replication
                             and have.bypassrls == want.bypassrls)):
        result.warnings.append(
            f"{address}: SUPERUSER, REPLICATION and BYPASSRLS need a superuser; {live.current_user} is not one, "
            "so they are left as they are")
        want = RoleState(**{**want.__dict__, **{a: getattr(have, a) if have else False
                                                 for a in ("superuser", "replication", "bypassrls")}})
    password = role.password.get_secret_value() if role.password is not None else None
    if have is None:
        options = _role_options(want, ROLE_FLAGS + ("connection_limit",)
                                + (("valid_until",) if want.valid_until else ()))
        statements = [_password_statement(sql.SQL("CREATE ROLE {} WITH ").format(name), options, password)]
        statements += _settings_statements(role.name, (), want.settings)
        if want.comment:
            statements.append(Statement(text(sql.SQL("COMMENT ON ROLE {} IS {}").format(name, literal(want.comment)))))
        after = _role_view(want) | ({"password": SENSITIVE} if password is not None else {})
        result.actions.append(Action(address, Op.CREATE, Phase.ROLE, sql=tuple(statements), after=after))
    else:
        changed = [a for a in ROLE_FLAGS + ("connection_limit", "valid_until") if getattr(have, a) != getattr(want, a)]
        statements: list[Statement] = []
        before, after = {a: getattr(have, a) for a in changed}, {a: getattr(want, a) for a in changed}
        set_password = False
        if password is not None:
            stored = None if live.passwords is None else live.passwords.get(role.name)
            policy = role.update_password or ("always" if live.passwords is not None else "on_create")
            if live.passwords is None:
                if policy == "always":
                    set_password = True
                    result.warnings.append(f"{address}: the password cannot be compared (pg_authid is not "
                                           "readable); it is set on every apply (update_password: always)")
                else:
                    result.warnings.append(f"{address}: the password cannot be compared (pg_authid is not "
                                           "readable); left as it is (update_password: on_create)")
            elif policy == "always" and not (stored and password_matches(password, stored, role.name)):
                set_password = True
        if changed or set_password:
            statements.append(_password_statement(sql.SQL("ALTER ROLE {} WITH ").format(name),
                                                  _role_options(want, changed), password if set_password else None))
            if set_password:
                before["password"] = SENSITIVE if live.passwords and live.passwords.get(role.name) else None
                after["password"] = SENSITIVE + " (changed)"
        if have.settings != want.settings:
            statements += _settings_statements(role.name, have.settings, want.settings)
            before["settings"], after["settings"] = dict(have.settings), dict(want.settings)
        if comment_changes(want.comment, have.comment):
            statements.append(Statement(text(sql.SQL("COMMENT ON ROLE {} IS {}").format(
                name, literal(want.comment or None)))))
            before["comment"], after["comment"] = have.comment, want.comment or None
        if statements:
            result.actions.append(Action(address, Op.UPDATE, Phase.ROLE, sql=tuple(statements),
                                         before=before, after=after,
                                         repeats=set_password and live.passwords is None and not changed))
    result.actions.extend(_diff_members(role, want.members, have.members if have else (), live))
    return result


def _password_statement(prefix: sql.Composable, options: list[sql.Composable], password: str | None) -> Statement:
    shown = text(prefix + sql.SQL(" ").join(options)) if options else text(prefix).removesuffix(" WITH ")
    if password is None:
        return Statement(shown)
    verifier = scram_verifier(password)  # the clear text never leaves this process
    with_password = prefix + sql.SQL(" ").join([*options, sql.SQL("PASSWORD {}").format(literal(verifier))])
    return Statement(text(with_password), shown=text(prefix + sql.SQL(" ").join([*options, sql.SQL("PASSWORD ")]))
                     + f"'{SENSITIVE}'")


def _settings_statements(role: str, have: tuple[tuple[str, str], ...],
                         want: tuple[tuple[str, str], ...]) -> list[Statement]:
    statements = []
    old, new = dict(have), dict(want)
    for key in sorted(set(old) - set(new)):
        statements.append(Statement(text(sql.SQL("ALTER ROLE {} RESET {}").format(ident(role), ident(key)))))
    for key, value in sorted(new.items()):
        if old.get(key) != value:
            statements.append(Statement(text(sql.SQL("ALTER ROLE {} SET {} TO {}").format(
                ident(role), ident(key), setting_value(value)))))
    return statements


def _role_view(state: RoleState) -> dict[str, object]:
    view: dict[str, object] = {a: getattr(state, a) for a in ROLE_FLAGS + ("connection_limit", "valid_until")}
    if state.settings:
        view["settings"] = dict(state.settings)
    if state.comment is not None:
        view["comment"] = state.comment
    return view


def _diff_members(role: model.Role, want: tuple[Member, ...], have: tuple[Member, ...],
                  live: LiveCluster) -> list[Action]:
    actions = []
    current = {m.role: m for m in have}
    pg16 = live.server_version >= 160000
    for member in want:
        existing = current.get(member.role)
        wanted = member if pg16 else Member(member.role, member.admin)
        if existing is not None and existing.admin == wanted.admin and (
            wanted.inherit is None or existing.inherit == wanted.inherit) and (
                wanted.set is None or existing.set == wanted.set):
            continue
        options = [sql.SQL("ADMIN {}").format(sql.SQL("TRUE" if wanted.admin else "FALSE"))] if pg16 else []
        if pg16 and wanted.inherit is not None:
            options.append(sql.SQL("INHERIT {}").format(sql.SQL("TRUE" if wanted.inherit else "FALSE")))
        if pg16 and wanted.set is not None:
            options.append(sql.SQL("SET {}").format(sql.SQL("TRUE" if wanted.set else "FALSE")))
        statements = []
        if not pg16 and existing is not None and existing.admin and not wanted.admin:
            statements.append(sql.SQL("REVOKE ADMIN OPTION FOR {} FROM {}").format(ident(member.role), ident(role.name)))
        else:
            grant = sql.SQL("GRANT {} TO {}").format(ident(member.role), ident(role.name))
            if options:
                grant = grant + sql.SQL(" WITH ") + sql.SQL(", ").join(options)
            elif wanted.admin:
                grant = grant + sql.SQL(" WITH ADMIN OPTION")
            statements.append(grant)
        actions.append(Action(
            f"membership.{role.name}.{member.role}", Op.CREATE if existing is None else Op.UPDATE, Phase.MEMBERSHIP,
            sql=tuple(Statement(text(s)) for s in statements),
            before=existing.__dict__ if existing else None, after=wanted.__dict__,
        ))
    if role.prune:
        wanted_roles = {m.role for m in want}
        for member in have:
            if member.role not in wanted_roles:
                actions.append(Action(
                    f"membership.{role.name}.{member.role}", Op.DELETE, Phase.MEMBERSHIP,
                    sql=(Statement(text(sql.SQL("REVOKE {} FROM {}").format(ident(member.role), ident(role.name)))),),
                    before=member.__dict__, hazards=(Hazard.REVOKES_ACCESS,),
                ))
    return actions


def drop_role(name: str, live: LiveCluster) -> list[Action]:
    """What a role owns or was granted goes first, in every database, then the role itself."""
    actions = []
    for database in sorted(db for db in live.databases if db != "template0"):
        actions.append(Action(
            f"role.{name}", Op.DELETE, Phase.DROP_ROLE, database=database,
            sql=(Statement(text(sql.SQL("REASSIGN OWNED BY {} TO {}").format(ident(name), ident(live.current_user)))),
                 Statement(text(sql.SQL("DROP OWNED BY {}").format(ident(name))))),
            hazards=(Hazard.DROPS_ROLE,),
            note=f"objects owned by {name} in {database} pass to {live.current_user}; its privileges are revoked",
        ))
    actions.append(Action(f"role.{name}", Op.DELETE, Phase.DROP_ROLE,
                          sql=(Statement(text(sql.SQL("DROP ROLE {}").format(ident(name)))),),
                          before=_role_view(live.roles[name]), hazards=(Hazard.DROPS_ROLE,)))
    return actions


# --- databases ------------------------------------------------------------------------------


def diff_databases(play: model.Play, live: LiveCluster) -> Result:
    result = Result()
    for db in play.databases:
        have = live.databases.get(db.name)
        name = ident(db.name)
        address = f"database.{db.name}"
        if have is None:
            options: list[sql.Composable] = []
            if db.owner:
                options.append(sql.SQL("OWNER {}").format(ident(db.owner)))
            for key, value in (("TEMPLATE", db.template), ("ENCODING", db.encoding), ("LOCALE", db.locale),
                               ("LC_COLLATE", db.lc_collate), ("LC_CTYPE", db.lc_ctype)):
                if value is not None:
                    options.append(sql.SQL(key + " {}").format(ident(value) if key == "TEMPLATE" else literal(value)))
            if db.connection_limit != -1:
                options.append(sql.SQL("CONNECTION LIMIT {}").format(literal(db.connection_limit)))
            statements = [Statement(text(sql.SQL("CREATE DATABASE {}").format(name)
                                         + (sql.SQL(" ") + sql.SQL(" ").join(options) if options else sql.SQL(""))))]
            result.actions.append(Action(address, Op.CREATE, Phase.DATABASE, sql=tuple(statements),
                                         transactional=False,
                                         after={"owner": db.owner or live.current_user,
                                                **{k: v for k, v in db.model_dump(
                                                    include={"encoding", "locale", "lc_collate", "lc_ctype",
                                                             "template"}).items() if v is not None}}))
            if db.comment:
                result.actions.append(Action(address, Op.UPDATE, Phase.DATABASE_GRANT, sql=(Statement(text(
                    sql.SQL("COMMENT ON DATABASE {} IS {}").format(name, literal(db.comment)))),),
                    after={"comment": db.comment}))
        else:
            before: dict[str, object] = {}
            after: dict[str, object] = {}
            statements = []
            if db.owner and have.owner != db.owner:
                statements.append(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(name, ident(db.owner)))
                before["owner"], after["owner"] = have.owner, db.owner
            if have.connection_limit != db.connection_limit:
                statements.append(sql.SQL("ALTER DATABASE {} CONNECTION LIMIT {}").format(
                    name, literal(db.connection_limit)))
                before["connection_limit"], after["connection_limit"] = have.connection_limit, db.connection_limit
            if comment_changes(db.comment, have.comment):
                statements.append(sql.SQL("COMMENT ON DATABASE {} IS {}").format(name, literal(db.comment or None)))
                before["comment"], after["comment"] = have.comment, db.comment or None
            if statements:
                result.actions.append(Action(address, Op.UPDATE, Phase.DATABASE,
                                             sql=tuple(Statement(text(s)) for s in statements),
                                             before=before, after=after))
            for attr, wanted in (("encoding", db.encoding), ("lc_collate", db.lc_collate or db.locale),
                                 ("lc_ctype", db.lc_ctype or db.locale)):
                actual = getattr(have, attr)
                if wanted is not None and actual is not None and _norm_locale(actual) != _norm_locale(wanted):
                    result.warnings.append(
                        f"{address}: {attr} is {actual!r} but the file says {wanted!r}; it is fixed at creation "
                        "(recreate the database, e.g. backup, drop, apply, restore, to change it)")
        result.extend(_diff_database_grants(db, live))
    declared = {db.name for db in play.databases}
    result.unmanaged.extend(f"database.{name}" for name in sorted(live.databases)
                            if name not in declared and name not in SYSTEM_DATABASES)
    return result


def _norm_locale(value: str) -> str:
    return value.lower().replace("-", "").replace("_", "")


def _diff_database_grants(db: model.Database, live: LiveCluster) -> Result:
    result = Result()
    ref = ObjectRef("database", None, db.name)
    for grant in db.grants:
        want = expand(grant.privileges, "database", live.server_version, grant.with_grant_option)
        have = live.database_acl.get((db.name, grant.to), frozenset())
        if db.name not in live.databases:
            have = implicit_acl("database", db.owner or live.current_user, grant.to, live.server_version)
        action = grant_action(ref, grant.to, want, have, database=None, phase=Phase.DATABASE_GRANT,
                              address=f"grant.{db.name}.database.{grant.to}")
        if action:
            result.actions.append(action)
    return result


def acl_changes(want: Privileges, have: Privileges) -> dict[str, list[str]]:
    """Split the difference into REVOKE, REVOKE GRANT OPTION FOR, GRANT and GRANT ... WITH GRANT OPTION."""
    want_names, have_names = dict(want), dict(have)
    return {
        "revoke": [p for p in have_names if p not in want_names],
        "revoke_option": [p for p, g in want_names.items() if not g and have_names.get(p)],
        "grant": [p for p, g in want_names.items() if not g and p not in have_names],
        "grant_option": [p for p, g in want_names.items() if g and not have_names.get(p)],
    }


def _acl_statements(want: Privileges, have: Privileges, prefix: sql.Composable, on: sql.Composable,
                    who: sql.Composable) -> tuple[Statement, ...]:
    changes = acl_changes(want, have)
    forms = {
        "revoke": "REVOKE {} ON {} FROM {}",
        "revoke_option": "REVOKE GRANT OPTION FOR {} ON {} FROM {}",
        "grant": "GRANT {} ON {} TO {}",
        "grant_option": "GRANT {} ON {} TO {} WITH GRANT OPTION",
    }
    return tuple(Statement(text(prefix + sql.SQL(form).format(privilege_list(changes[kind]), on, who)))
                 for kind, form in forms.items() if changes[kind])


def _op(want: Privileges, have: Privileges) -> Op:
    return Op.CREATE if not have else (Op.DELETE if not want else Op.UPDATE)


def implicit_acl(kind: str, owner: str, grantee: str, server_version: int) -> Privileges:
    """acldefault(): what an object's NULL ACL stands for."""
    if grantee == owner:
        return frozenset((p, False) for p in all_privileges(kind, server_version))
    if grantee == PUBLIC:
        return frozenset({"database": {("CONNECT", False), ("TEMPORARY", False)},
                          "function": {("EXECUTE", False)}, "type": {("USAGE", False)}}.get(kind, set()))
    return frozenset()


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


def grant_action(ref: ObjectRef, to: str, want: Privileges, have: Privileges, *, database: str | None,
                 phase: Phase, address: str, hazards: tuple[Hazard, ...] = ()) -> Action | None:
    """GRANT what is missing, REVOKE what is extra, and fix grant options: exact for this grantee."""
    if want == have:
        return None
    return Action(
        address, _op(want, have), phase, database=database,
        sql=_acl_statements(want, have, sql.SQL(""), object_clause(ref), grantee(to)),
        before={"privileges": _privilege_view(have)} if have else None,
        after={"privileges": _privilege_view(want)} if want else None,
        hazards=hazards,
    )


def _privilege_view(privileges: Privileges) -> list[str]:
    return sorted(p + (" WITH GRANT OPTION" if g else "") for p, g in privileges)


# --- inside one database ----------------------------------------------------------------------


def diff_database_contents(db: model.Database, live: LiveDatabase | None, cluster: LiveCluster, canon: Canon,
                           planned: Planned, roles: list[model.Role]) -> Result:
    """Schemas, extensions, object privileges and default privileges of one database.

    ``planned`` lists the tables and sequences that this apply creates, with their owners, so
    that grants on "all tables in schema X" cover them in the same run.
    """
    live = live or LiveDatabase(name=db.name)
    result = Result()
    result.extend(_diff_schemas(db, live))
    result.extend(_diff_extensions(db, live))
    grants = _desired_grants(db, live, cluster, canon, planned)
    defaults = _desired_default_privileges(db, cluster)
    owners = {(ObjectRef("schema", None, s.name)): s.owner or cluster.current_user
              for s in db.schemas if s.name not in live.schemas}
    owners |= {ObjectRef(kind, schema, name): owner or cluster.current_user
               for kind, objects in planned.items() for (schema, name), owner in objects.items()
               if (schema, name) not in live.objects.get(kind, set())}
    result.extend(_diff_object_grants(db.name, grants, live, owners, cluster.server_version))
    result.extend(_diff_default_privileges(db.name, defaults, live, cluster.server_version))
    result.extend(_prune_privileges(db.name, {r.name for r in roles if r.prune}, grants, defaults, live))
    return result


def _diff_schemas(db: model.Database, live: LiveDatabase) -> Result:
    result = Result()
    for schema in db.schemas:
        have = live.schemas.get(schema.name)
        name = ident(schema.name)
        address = f"schema.{db.name}.{schema.name}"
        statements: list[sql.Composable] = []
        before: dict[str, object] = {}
        after: dict[str, object] = {}
        if have is None:
            create = sql.SQL("CREATE SCHEMA {}").format(name)
            if schema.owner:
                create = create + sql.SQL(" AUTHORIZATION {}").format(ident(schema.owner))
            statements.append(create)
            after = {"owner": schema.owner} if schema.owner else {}
            if schema.comment:
                statements.append(sql.SQL("COMMENT ON SCHEMA {} IS {}").format(name, literal(schema.comment)))
                after["comment"] = schema.comment
        else:
            if schema.owner and have.owner != schema.owner:
                statements.append(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(name, ident(schema.owner)))
                before["owner"], after["owner"] = have.owner, schema.owner
            if comment_changes(schema.comment, have.comment):
                statements.append(sql.SQL("COMMENT ON SCHEMA {} IS {}").format(name, literal(schema.comment or None)))
                before["comment"], after["comment"] = have.comment, schema.comment or None
        if statements:
            result.actions.append(Action(address, Op.CREATE if have is None else Op.UPDATE, Phase.SCHEMA,
                                         database=db.name, sql=tuple(Statement(text(s)) for s in statements),
                                         before=before or None, after=after))
    declared = {s.name for s in db.schemas} | {t.schema_ for t in db.tables}
    for name in sorted(set(live.schemas) - declared - {"public"}):
        if db.prune:
            result.actions.append(Action(f"schema.{db.name}.{name}", Op.DELETE, Phase.DROP_SCHEMA, database=db.name,
                                         sql=(Statement(text(sql.SQL("DROP SCHEMA {} CASCADE").format(ident(name)))),),
                                         before={"owner": live.schemas[name].owner},
                                         hazards=(Hazard.DELETES_DATA,),
                                         note="drops every object in the schema"))
        else:
            result.unmanaged.append(f"schema.{db.name}.{name}")
    return result


def _diff_extensions(db: model.Database, live: LiveDatabase) -> Result:
    result = Result()
    for ext in db.extensions:
        have = live.extensions.get(ext.name)
        name = ident(ext.name)
        address = f"extension.{db.name}.{ext.name}"
        if have is None:
            create = sql.SQL("CREATE EXTENSION {}").format(name)
            if ext.schema_:
                create = create + sql.SQL(" SCHEMA {}").format(ident(ext.schema_))
            if ext.version:
                create = create + sql.SQL(" VERSION {}").format(literal(ext.version))
            result.actions.append(Action(address, Op.CREATE, Phase.EXTENSION, database=db.name,
                                         sql=(Statement(text(create)),),
                                         after={k: v for k, v in (("version", ext.version),
                                                                  ("schema", ext.schema_)) if v}))
            continue
        statements: list[sql.Composable] = []
        before: dict[str, object] = {}
        after: dict[str, object] = {}
        if ext.version and have.version != ext.version:
            statements.append(sql.SQL("ALTER EXTENSION {} UPDATE TO {}").format(name, literal(ext.version)))
            before["version"], after["version"] = have.version, ext.version
        if ext.schema_ and have.schema != ext.schema_:
            statements.append(sql.SQL("ALTER EXTENSION {} SET SCHEMA {}").format(name, ident(ext.schema_)))
            before["schema"], after["schema"] = have.schema, ext.schema_
        if statements:
            result.actions.append(Action(address, Op.UPDATE, Phase.EXTENSION, database=db.name,
                                         sql=tuple(Statement(text(s)) for s in statements), before=before, after=after))
    declared = {e.name for e in db.extensions}
    result.unmanaged.extend(f"extension.{db.name}.{name}" for name in sorted(live.extensions)
                            if name not in declared and name != "plpgsql")
    return result


def _targets(grant: model.SchemaGrant, schema: str, live: LiveDatabase, canon: Canon,
             planned: Planned) -> list[ObjectRef]:
    kind = grant.object_kind
    if kind == "schema":
        return [ObjectRef("schema", None, schema)]
    chosen = getattr(grant, kind + "s")
    existing = live.objects.get(kind, set()) | set(planned.get(kind, {}))
    if chosen == "ALL":
        return [ObjectRef(kind, s, n) for s, n in sorted(existing) if s == schema]
    refs = []
    for name in chosen:
        if kind == "function":
            resolved = canon.functions.get(_qualified_function(schema, name))
            if resolved is None:
                raise GrantTargetMissing(f"function {schema}.{name} does not exist in database {live.name}")
            refs.append(ObjectRef("function", resolved[0], resolved[1]))
        else:
            if (schema, name) not in existing:
                raise GrantTargetMissing(
                    f"{kind} {schema}.{name} neither exists in database {live.name} nor is declared")
            refs.append(ObjectRef(kind, schema, name))
    return refs


class GrantTargetMissing(ValueError):
    """A grant names an object that will not exist; the reconciler reports it as an error."""


def _qualified_function(schema: str, signature: str) -> str:
    return f"{text(ident(schema))}.{signature}"


def function_signatures(db: model.Database) -> list[str]:
    """Every function signature the grants of ``db`` name, for `catalog.canonical_functions`."""
    return [_qualified_function(s.name, f) for s in db.schemas for g in s.grants
            if isinstance(g.functions, list) for f in g.functions]


def _desired_grants(db: model.Database, live: LiveDatabase, cluster: LiveCluster, canon: Canon,
                    planned: Planned) -> dict[tuple[ObjectRef, str], Privileges]:
    want: dict[tuple[ObjectRef, str], Privileges] = {}
    version = cluster.server_version
    for schema in db.schemas:
        for grant in schema.grants:
            for ref in _targets(grant, schema.name, live, canon, planned):
                privileges = expand(grant.privileges, ref.kind, version, grant.with_grant_option)
                key = (ref, grant.to)
                want[key] = want.get(key, frozenset()) | privileges
    # Grants written on a table are more specific than "all tables in schema": they win.
    for table in db.tables:
        for grant in table.grants:
            ref = ObjectRef("table", table.schema_, table.name)
            want[(ref, grant.to)] = expand(grant.privileges, "table", version, grant.with_grant_option)
    return want


def _diff_object_grants(database: str, grants: dict[tuple[ObjectRef, str], Privileges], live: LiveDatabase,
                        new_owners: dict[ObjectRef, str], server_version: int) -> Result:
    """``new_owners``: objects this apply creates, whose ACL starts as PostgreSQL gives it to new objects."""
    result = Result()
    for (ref, to), want in sorted(grants.items(), key=lambda item: (item[0][0].kind, item[0][0].label(), item[0][1])):
        if ref in new_owners:
            have = new_object_acl(ref, new_owners[ref], to, live, server_version)
        else:
            have = live.acl.get((ref, to), frozenset())
        action = grant_action(ref, to, want, have, database=database,
                              phase=Phase.GRANT, address=f"grant.{database}.{ref.kind}.{ref.label()}.{to}")
        if action:
            result.actions.append(action)
    return result


def _prune_privileges(database: str, pruned: set[str], grants: dict[tuple[ObjectRef, str], Privileges],
                      defaults: dict[DefaultAclKey, Privileges], live: LiveDatabase) -> Result:
    """For roles with `prune: true`, revoke privileges in this database that the file does not grant."""
    result = Result()
    for (ref, to), have in sorted(live.acl.items(), key=lambda item: (item[0][0].label(), item[0][1])):
        if to in pruned and (ref, to) not in grants and have:
            result.actions.append(Action(
                f"grant.{database}.{ref.kind}.{ref.label()}.{to}", Op.DELETE, Phase.GRANT, database=database,
                sql=_acl_statements(frozenset(), have, sql.SQL(""), object_clause(ref), grantee(to)),
                before={"privileges": _privilege_view(have)}, hazards=(Hazard.REVOKES_ACCESS,)))
    for key, have in sorted(live.default_acl.items(), key=lambda item: repr(item[0])):
        if key.grantee in pruned and key not in defaults and have:
            result.actions.append(_default_acl_action(database, key, frozenset(), have, (Hazard.REVOKES_ACCESS,)))
    return result


def _desired_default_privileges(db: model.Database, cluster: LiveCluster) -> dict[DefaultAclKey, Privileges]:
    items = [(d, None) for d in db.default_privileges] + [(d, s.name) for s in db.schemas
                                                          for d in s.default_privileges]
    return {DefaultAclKey(d.for_role or cluster.current_user, schema, d.on, d.to):
            expand(d.privileges, _DEFACL_KIND[d.on], cluster.server_version, d.with_grant_option)
            for d, schema in items}


def _diff_default_privileges(database: str, defaults: dict[DefaultAclKey, Privileges],
                             live: LiveDatabase, server_version: int) -> Result:
    result = Result()
    for key, want in defaults.items():
        row_exists = DefaultAclKey(key.for_role, key.schema, key.on, "") in live.default_acl
        if key in live.default_acl:
            have = live.default_acl[key]
        elif key.schema is None and not row_exists:
            have = implicit_acl(_DEFACL_KIND[key.on], key.for_role, key.grantee, server_version)
        else:
            have = frozenset()
        if want != have:
            result.actions.append(_default_acl_action(database, key, want, have, ()))
    return result


def _default_acl_action(database: str, key: DefaultAclKey, want: Privileges, have: Privileges,
                        hazards: tuple[Hazard, ...]) -> Action:
    prefix = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} ").format(ident(key.for_role))
    if key.schema is not None:
        prefix = prefix + sql.SQL("IN SCHEMA {} ").format(ident(key.schema))
    address = f"default_privileges.{database}.{key.for_role}.{key.schema or '*'}.{key.on}.{key.grantee}"
    return Action(address, _op(want, have), Phase.DEFAULT_PRIVILEGE, database=database,
                  sql=_acl_statements(want, have, prefix, sql.SQL(key.on.upper()), grantee(key.grantee)),
                  before={"privileges": _privilege_view(have)} if have else None,
                  after={"privileges": _privilege_view(want)} if want else None, hazards=hazards)
