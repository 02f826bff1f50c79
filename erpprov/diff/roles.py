"""The diff for roles and their memberships (pure)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import replace

from psycopg import sql
from pydantic import SecretStr

from erpprov.core import model
from erpprov.core.actions import SENSITIVE, Action, Hazard, Op, Phase, Statement
from erpprov.core.address import Address
from erpprov.core.cluster import (
    ROLE_FLAGS,
    LiveCluster,
    Member,
    RoleState,
    attributes_beyond_defaults,
)
from erpprov.diff.result import Canon, Result, comment_changes
from erpprov.errors import ErpprovError
from erpprov.postgres.ddl import (
    canonical_setting,
    ident,
    literal,
    render,
    setting_value,
    text,
)


def desired_role(role: model.Role, canon: Canon) -> RoleState:
    until = role.valid_until
    return RoleState(
        name=role.name, login=role.login, superuser=role.superuser, createdb=role.createdb,
        createrole=role.createrole, inherit=role.inherit, replication=role.replication, bypassrls=role.bypassrls,
        connection_limit=role.connection_limit,
        valid_until=canon.timestamps.get(until, until) if until is not None else None,
        settings=tuple(sorted((k, canonical_setting(k, v)) for k, v in role.settings.items())),
        comment=role.comment,
        members=tuple(sorted((Member(m.role, m.admin, m.inherit, m.set) for m in role.member_of),
                             key=lambda m: m.role)),
    )


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


def _password_policy(role: model.Role, live: LiveCluster) -> str:
    # Without pg_authid there is nothing to compare with, so by default a password is set once.
    return role.update_password or ("always" if live.passwords is not None else "on_create")


def passwords_to_compare(play: model.Play, live: LiveCluster) -> dict[str, tuple[str, str]]:
    """Role name -> (password in the files, stored verifier) for every role whose password the
    diff compares; `Canon.passwords` holds the outcome."""
    if live.passwords is None:
        return {}
    return {
        role.name: (role.password.get_secret_value(), stored)
        for role in play.roles
        if role.password is not None and role.state != "absent" and role.name in live.roles
        and (stored := live.passwords.get(role.name)) and _password_policy(role, live) == "always"
    }


# Attributes whose loss takes access away (to log in, or to do what they allow): lowering one is
# a hazard, and erpprov never lowers one on the role it works as.
ACCESS_FLAGS = ("login", "superuser", "createrole", "createdb", "replication", "bypassrls")


def diff_roles(play: model.Play, live: LiveCluster, canon: Canon, *, login_role: str) -> Result:
    """``login_role``: the role erpprov logs in as (the inventory's pg_user). Neither it nor the
    role the session runs as (`live.current_user`, which a `role` setting may make another) is
    dropped or loses an attribute of ACCESS_FLAGS: the next run could not log in or do its work."""
    result = Result()
    declared = {r.name for r in play.roles}
    own = {login_role, live.current_user}
    for role in play.roles:
        if role.state == "absent":
            if role.name in live.roles:
                if role.name in own:
                    raise ErpprovError(
                        f"role {role.name} is the role erpprov connects as; the playbook sets state: absent "
                        "on it, and dropping it would lock erpprov out",
                        hint="remove the role from the playbook, or connect as another role (pg_user in the "
                             "inventory) to drop it")
                result.actions.extend(drop_role(role.name, live))
            continue
        result.extend(_diff_role(role, desired_role(role, canon), live, canon, own))
    for name in sorted(live.roles):
        if name in declared or name in own:
            continue
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in play.prune_roles):
            result.actions.extend(drop_role(name, live))
        else:
            result.unmanaged.append(Address("role", name))
    return result


def _diff_role(role: model.Role, want: RoleState, live: LiveCluster, canon: Canon, own: set[str]) -> Result:
    result = Result()
    have = live.roles.get(role.name)
    address = Address("role", role.name)
    name = ident(role.name)
    if not live.is_superuser and (want.superuser or want.replication or want.bypassrls) and (
        have is None or not (have.superuser == want.superuser and have.replication == want.replication
                             and have.bypassrls == want.bypassrls)):
        result.warnings.append(
            f"{address}: SUPERUSER, REPLICATION and BYPASSRLS need a superuser; {live.current_user} is not one, "
            "so they are left as they are")
        want = replace(want, superuser=have.superuser if have else False,
                       replication=have.replication if have else False, bypassrls=have.bypassrls if have else False)
    if have is None:
        password = role.password
        options = _role_options(want, ROLE_FLAGS + ("connection_limit",)
                                + (("valid_until",) if want.valid_until else ()))
        statements: list[Statement] = [
            _password_statement(sql.SQL("CREATE ROLE {} WITH ").format(name), options, password)]
        statements += _settings_statements(role.name, (), want.settings)
        if want.comment:
            statements.append(render(sql.SQL("COMMENT ON ROLE {} IS {}").format(name, literal(want.comment))))
        after = _role_view(want) | ({"password": SENSITIVE} if password is not None else {})
        result.actions.append(Action(address, Op.CREATE, Phase.ROLE, sql=tuple(statements), after=after))
    else:
        changed = [a for a in ROLE_FLAGS + ("connection_limit", "valid_until") if getattr(have, a) != getattr(want, a)]
        lost = [a.upper() for a in ACCESS_FLAGS if getattr(have, a) and not getattr(want, a)]
        if lost and role.name in own:
            raise ErpprovError(
                f"role {role.name} is the role erpprov connects as; the playbook would take {', '.join(lost)} "
                "from it, and erpprov would lose the access it works with",
                hint=f"declare {', '.join(a.lower() + ': true' for a in lost)} on role {role.name}, or connect "
                     "as another role (pg_user in the inventory) to change it")
        statements = []
        before, after = {a: getattr(have, a) for a in changed}, {a: getattr(want, a) for a in changed}
        set_password = False
        if role.password is not None:
            stored = None if live.passwords is None else live.passwords.get(role.name)
            policy = _password_policy(role, live)
            if live.passwords is None:
                if policy == "always":
                    set_password = True
                    result.warnings.append(f"{address}: the password cannot be compared (pg_authid is not "
                                           "readable); it is set on every apply (update_password: always)")
                else:
                    result.warnings.append(f"{address}: the password cannot be compared (pg_authid is not "
                                           "readable); left as it is (update_password: on_create)")
            elif policy == "always" and not canon.passwords.get(role.name, False):  # no verifier: not compared
                set_password = True
        if changed or set_password:
            statements.append(_password_statement(sql.SQL("ALTER ROLE {} WITH ").format(name),
                                                  _role_options(want, changed),
                                                  role.password if set_password else None))
            if set_password:
                before["password"] = SENSITIVE if stored else None
                after["password"] = SENSITIVE + " (changed)"
        if have.settings != want.settings:
            statements += _settings_statements(role.name, have.settings, want.settings)
            before["settings"], after["settings"] = dict(have.settings), dict(want.settings)
        if comment_changes(want.comment, have.comment):
            statements.append(render(sql.SQL("COMMENT ON ROLE {} IS {}").format(
                name, literal(want.comment or None))))
            before["comment"], after["comment"] = have.comment, want.comment or None
        if statements:
            result.actions.append(Action(address, Op.UPDATE, Phase.ROLE, sql=tuple(statements),
                                         before=before, after=after,
                                         hazards=(Hazard.REVOKES_ACCESS,) if lost else (),
                                         note=f"{role.name} loses {', '.join(lost)}" if lost else None,
                                         repeats=set_password and live.passwords is None and not changed))
    result.actions.extend(_diff_members(role, want.members, have.members if have else (), live))
    result.warnings.extend(_unsupported_member_options(role, want, live))
    return result


def _password_statement(prefix: sql.Composable, options: list[sql.Composable],
                        password: SecretStr | None) -> Statement:
    shown = text(prefix + sql.SQL(" ").join(options)) if options else text(prefix).removesuffix(" WITH ")
    if password is None:
        return Statement(shown)
    # The verifier follows when the statement runs (a fresh salt each time): the diff stays a
    # function of its inputs, and the clear text never leaves this process. The password is
    # rendered now, though: a variable that does not render must stop the plan, not the apply.
    head = text(prefix + sql.SQL(" ").join([*options, sql.SQL("PASSWORD ")]))
    return Statement(head, shown=head + f"'{SENSITIVE}'", password=SecretStr(password.get_secret_value()))


def _settings_statements(role: str, have: tuple[tuple[str, str], ...],
                         want: tuple[tuple[str, str], ...]) -> list[Statement]:
    statements = []
    old, new = dict(have), dict(want)
    for key in sorted(set(old) - set(new)):
        statements.append(render(sql.SQL("ALTER ROLE {} RESET {}").format(ident(role), ident(key))))
    for key, value in sorted(new.items()):
        if old.get(key) != value:
            statements.append(render(sql.SQL("ALTER ROLE {} SET {} TO {}").format(
                ident(role), ident(key), setting_value(key, value))))
    return statements


def _role_view(state: RoleState) -> dict[str, object]:
    """Attributes that differ from CREATE ROLE's defaults: what a reviewer needs to see."""
    view = attributes_beyond_defaults(state)
    if state.settings:
        view["settings"] = dict(state.settings)
    if state.comment is not None:
        view["comment"] = state.comment
    return view


def _unsupported_member_options(role: model.Role, want: RoleState, live: LiveCluster) -> list[str]:
    """Before PostgreSQL 16 a membership has no INHERIT or SET option of its own: the member role's
    INHERIT attribute decides for all its memberships, and SET ROLE is always allowed. A declared
    option the server cannot hold would otherwise be dropped without a word, and leave the member
    with more access than the file says."""
    if live.server_version >= 160000:
        return []
    warnings = []
    for member in want.members:
        if member.inherit is False and want.inherit:
            warnings.append(f"membership {role.name} in {member.role}: inherit: false needs PostgreSQL 16; here the "
                            f"role attribute decides, and {role.name} has INHERIT, so it inherits {member.role}'s "
                            "privileges (set inherit: false on the role itself)")
        if member.set is False:
            warnings.append(f"membership {role.name} in {member.role}: set: false needs PostgreSQL 16; here "
                            f"{role.name} can still SET ROLE {member.role}")
    return warnings


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
            statements.append(sql.SQL("REVOKE ADMIN OPTION FOR {} FROM {}").format(ident(member.role),
                                                                                 ident(role.name)))
        else:
            grant = sql.SQL("GRANT {} TO {}").format(ident(member.role), ident(role.name))
            if options:
                grant = grant + sql.SQL(" WITH ") + sql.SQL(", ").join(options)
            elif wanted.admin:
                grant = grant + sql.SQL(" WITH ADMIN OPTION")
            statements.append(grant)
        actions.append(Action(
            Address("membership", role.name, member.role), Op.CREATE if existing is None else Op.UPDATE,
            Phase.MEMBERSHIP,
            sql=tuple(render(s) for s in statements),
            before=existing.__dict__ if existing else None, after=wanted.__dict__,
        ))
    if role.prune:
        wanted_roles = {m.role for m in want}
        for member in have:
            if member.role not in wanted_roles:
                actions.append(Action(
                    Address("membership", role.name, member.role), Op.DELETE, Phase.MEMBERSHIP,
                    sql=(render(sql.SQL("REVOKE {} FROM {}").format(ident(member.role), ident(role.name))),),
                    before=member.__dict__, hazards=(Hazard.REVOKES_ACCESS,),
                ))
    return actions


def drop_role(name: str, live: LiveCluster) -> list[Action]:
    """What a role owns or was granted goes first, in every database, then the role itself."""
    actions = []
    for database in sorted(db for db in live.databases if db != "template0"):
        actions.append(Action(
            Address("role", name), Op.DELETE, Phase.DROP_ROLE, database=database,
            sql=(render(sql.SQL("REASSIGN OWNED BY {} TO {}").format(ident(name), ident(live.current_user))),
                 render(sql.SQL("DROP OWNED BY {}").format(ident(name)))),
            hazards=(Hazard.DROPS_ROLE,),
            note=f"objects owned by {name} in {database} pass to {live.current_user}; its privileges are revoked",
        ))
    actions.append(Action(Address("role", name), Op.DELETE, Phase.DROP_ROLE,
                          sql=(render(sql.SQL("DROP ROLE {}").format(ident(name))),),
                          before=_role_view(live.roles[name]), hazards=(Hazard.DROPS_ROLE,)))
    return actions


# --- databases ------------------------------------------------------------------------------
