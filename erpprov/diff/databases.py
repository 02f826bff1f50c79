"""The diff for databases, and for the schemas and extensions inside each (pure)."""

from __future__ import annotations

from collections.abc import Callable

from psycopg import sql

from erpprov.core import model
from erpprov.core.actions import Action, Hazard, Op, Phase
from erpprov.core.address import Address
from erpprov.core.cluster import (
    LiveCluster,
    LiveDatabase,
    ObjectRef,
    Privileges,
)
from erpprov.diff.privileges import diff_privileges, grant_action, stray_grantees
from erpprov.diff.result import Canon, Planned, Result, comment_changes
from erpprov.postgres.acl import expand, implicit_acl, owner_transferred
from erpprov.postgres.ddl import (
    ident,
    literal,
    render,
)

# The databases initdb creates: never reported as unmanaged, whatever the play declares.
INITDB_DATABASES = frozenset({"postgres", "template0", "template1"})


def diff_databases(play: model.Play, live: LiveCluster) -> Result:
    result = Result()
    for db in play.databases:
        have = live.databases.get(db.name)
        name = ident(db.name)
        address = Address("database", db.name)
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
            create = render(sql.SQL("CREATE DATABASE {}").format(name)
                                    + (sql.SQL(" ") + sql.SQL(" ").join(options) if options else sql.SQL("")))
            result.actions.append(Action(address, Op.CREATE, Phase.DATABASE, sql=(create,),
                                         transactional=False,
                                         after={"owner": db.owner or live.current_user,
                                                **{k: v for k, v in db.model_dump(
                                                    include={"encoding", "locale", "lc_collate", "lc_ctype",
                                                             "template"}).items() if v is not None}}))
            if db.comment:
                result.actions.append(Action(address, Op.UPDATE, Phase.DATABASE_GRANT, sql=(render(
                    sql.SQL("COMMENT ON DATABASE {} IS {}").format(name, literal(db.comment))),),
                    after={"comment": db.comment}))
        else:
            before: dict[str, object] = {}
            after: dict[str, object] = {}
            statements: list[sql.Composable] = []
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
                                             sql=tuple(render(s) for s in statements),
                                             before=before, after=after))
            for attr, wanted in (("encoding", db.encoding), ("lc_collate", db.lc_collate or db.locale),
                                 ("lc_ctype", db.lc_ctype or db.locale)):
                actual = getattr(have, attr)
                if wanted is not None and actual is not None and _norm_locale(actual) != _norm_locale(wanted):
                    result.warnings.append(
                        f"{address}: {attr} is {actual!r} but the file says {wanted!r}; it is fixed at creation "
                        "(recreate the database, e.g. backup, drop, apply, restore, to change it)")
        result.extend(_diff_database_grants(db, live, {r.name for r in play.roles if r.prune}))
    declared = {db.name for db in play.databases}
    result.unmanaged.extend(Address("database", name) for name in sorted(live.databases)
                            if name not in declared and name not in INITDB_DATABASES)
    return result


def _norm_locale(value: str) -> str:
    return value.lower().replace("-", "").replace("_", "")


def _diff_database_grants(db: model.Database, live: LiveCluster, pruned: set[str]) -> Result:
    """Grants on the database; for `prune: true` roles, what they hold without a grant is revoked."""
    result = Result()
    ref = ObjectRef("database", None, db.name)
    declared = {g.to for g in db.grants}
    acl = _database_acl(db, live)
    for role in sorted(pruned - declared):
        have = acl(role)
        action = grant_action(ref, role, frozenset(), have, database=None, phase=Phase.DATABASE_GRANT,
                              address=Address("grant", db.name, "database", role), hazards=(Hazard.REVOKES_ACCESS,))
        if action:
            result.actions.append(action)
    for grant in db.grants:
        want = expand(grant.privileges, "database", live.server_version, grant.with_grant_option)
        have = acl(grant.to)
        action = grant_action(ref, grant.to, want, have, database=None, phase=Phase.DATABASE_GRANT,
                              address=Address("grant", db.name, "database", grant.to))
        if action:
            result.actions.append(action)
    if db.name in live.databases:
        owner = db.owner or live.databases[db.name].owner
        roles = {role for name, role in live.database_acl if name == db.name} | {owner}
        held = {role: have for role in roles if (have := acl(role))}  # as a change of owner leaves them
        strays = stray_grantees(held, declared | pruned, owner,
                                lambda role: (implicit_acl("database", owner, role, live.server_version),))
        result.unmanaged += [Address("grant", db.name, "database", role) for role in strays]
    return result


def _database_acl(db: model.Database, live: LiveCluster) -> Callable[[str], Privileges]:
    """What each role will hold on the database when its grants run: for one this apply creates,
    what a new database starts with; else its ACL, as a change of owner (which runs first) leaves it."""
    if db.name not in live.databases:
        return lambda role: implicit_acl("database", db.owner or live.current_user, role, live.server_version)
    acl = {key: privileges for key, privileges in live.database_acl.items() if key[0] == db.name}
    owner = live.databases[db.name].owner
    if db.owner and db.owner != owner:
        acl = owner_transferred(acl, {db.name: (owner, db.owner)})
    return lambda role: acl.get((db.name, role), frozenset())


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
    result.extend(diff_privileges(db, live, cluster, canon, planned, roles))
    return result


def _diff_schemas(db: model.Database, live: LiveDatabase) -> Result:
    result = Result()
    for schema in db.schemas:
        have = live.schemas.get(schema.name)
        name = ident(schema.name)
        address = Address("schema", db.name, schema.name)
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
                                         database=db.name, sql=tuple(render(s) for s in statements),
                                         before=before or None, after=after))
    declared = {s.name for s in db.schemas} | {t.schema_ for t in db.tables}
    for stray in sorted(set(live.schemas) - declared - {"public"}):
        if db.prune:
            result.actions.append(Action(Address("schema", db.name, stray), Op.DELETE, Phase.DROP_SCHEMA,
                                         database=db.name,
                                         sql=(render(sql.SQL("DROP SCHEMA {} CASCADE").format(ident(stray))),),
                                         before={"owner": live.schemas[stray].owner},
                                         hazards=(Hazard.DELETES_DATA,),
                                         note="drops every object in the schema"))
        else:
            result.unmanaged.append(Address("schema", db.name, stray))
    return result


def _diff_extensions(db: model.Database, live: LiveDatabase) -> Result:
    result = Result()
    for ext in db.extensions:
        have = live.extensions.get(ext.name)
        name = ident(ext.name)
        address = Address("extension", db.name, ext.name)
        if ext.state == "absent":
            if have is not None:
                # RESTRICT: PostgreSQL refuses while a table column or anything outside the
                # extension uses what it holds, so only the extension's own objects go
                result.actions.append(Action(address, Op.DELETE, Phase.DROP_EXTENSION, database=db.name,
                                             sql=(render(sql.SQL("DROP EXTENSION {}").format(name)),),
                                             before={"version": have.version, "schema": have.schema},
                                             hazards=(Hazard.DELETES_DATA,),
                                             note="its functions, types and operators are dropped; fails if "
                                                  "anything outside the extension still uses them"))
            continue
        if have is None:
            create = sql.SQL("CREATE EXTENSION {}").format(name)
            if ext.schema_:
                create = create + sql.SQL(" SCHEMA {}").format(ident(ext.schema_))
            if ext.version:
                create = create + sql.SQL(" VERSION {}").format(literal(ext.version))
            result.actions.append(Action(address, Op.CREATE, Phase.EXTENSION, database=db.name,
                                         sql=(render(create),),
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
                                         sql=tuple(render(s) for s in statements), before=before, after=after))
    declared = {e.name for e in db.extensions}
    result.unmanaged.extend(Address("extension", db.name, name) for name in sorted(live.extensions)
                            if name not in declared and name != "plpgsql")
    return result
