"""Row-level security of a table and its policies. Turning it off, or dropping a policy, can let
rows through that were held back: hazard `widens_access`, refused unless allowed."""

from __future__ import annotations

from dataclasses import replace

from psycopg import sql

from erpprov.core.actions import Hazard, Op, Phase, Statement
from erpprov.core.address import Address
from erpprov.core.tables import PolicyState, TableState
from erpprov.diff.tables.context import Context
from erpprov.diff.tables.emit import Order
from erpprov.postgres import table_ddl as ddl

_OFF = (False, False)


def diff_row_security(ctx: Context, want: TableState, have: TableState | None) -> None:
    """`have` None: a table this plan creates."""
    s, t = want.schema, want.name
    _diff_policies(ctx, s, t, want.policies, {p.name: p for p in have.policies} if have else {})
    _switches(ctx, s, t, want.row_security, have.row_security if have else _OFF)


def _switches(ctx: Context, s: str, t: str, want: tuple[bool, bool], have: tuple[bool, bool]) -> None:
    """ENABLE/DISABLE and FORCE/NO FORCE, after the policies are in place."""
    for position, on, off in ((0, "ENABLE", "DISABLE"), (1, "FORCE", "NO FORCE")):
        if want[position] == have[position]:
            continue
        key = ("enabled", "forced")[position]
        ctx.out.add(ctx.a_table(s, t), Op.UPDATE, Phase.POLICY,
                    [ddl.alter_table(s, t, sql.SQL("{} ROW LEVEL SECURITY").format(
                        sql.SQL(on if want[position] else off)))],
                    before={f"row_level_security.{key}": have[position]},
                    after={f"row_level_security.{key}": want[position]},
                    hazards=() if want[position] else (Hazard.WIDENS_ACCESS,), order=Order.LATE,
                    note=None if want[position] else _widening(position))


def _widening(position: int) -> str:
    if position == 0:
        return "row-level security is turned off: every row is visible to whoever holds privileges on the table"
    return "the table owner is no longer subject to the policies"


def _diff_policies(ctx: Context, s: str, t: str, wanted: tuple[PolicyState, ...],
                   live: dict[str, PolicyState]) -> None:
    for policy in wanted:
        old = live.get(policy.name)
        address = _address(ctx, s, t, policy.name)
        if old is None:
            ctx.out.add(address, Op.CREATE, Phase.POLICY, creating(s, t, policy), after=policy_view(policy))
        elif old == policy:
            continue
        elif replace(old, comment=policy.comment) == policy:
            ctx.out.add(address, Op.UPDATE, Phase.COMMENT, [_comment(s, t, policy)],
                        before={"comment": old.comment}, after={"comment": policy.comment})
        elif _alterable(old, policy):
            query = sql.SQL("ALTER POLICY {} ON {} TO {}").format(
                sql.Identifier(policy.name), ddl.ident(s, t), ddl.policy_roles(policy.roles))
            statements = [ddl.render(query + ddl.policy_expressions(policy))]
            if old.comment != policy.comment:
                statements.append(_comment(s, t, policy))
            ctx.out.add(address, Op.UPDATE, Phase.POLICY, statements, before=policy_view(old),
                        after=policy_view(policy))
        else:  # in one transaction: no moment without it
            ctx.out.add(address, Op.REPLACE, Phase.POLICY,
                        [drop(s, t, old.name), *creating(s, t, policy)],
                        before=policy_view(old), after=policy_view(policy),
                        note="dropped and created again (PostgreSQL cannot change its command, its kind, "
                             "or take a clause away)")
    for name in sorted(set(live) - {p.name for p in wanted}):
        ctx.out.add(_address(ctx, s, t, name), Op.DELETE, Phase.POLICY, [drop(s, t, name)],
                    before=policy_view(live[name]), hazards=(Hazard.WIDENS_ACCESS,), order=Order.EARLY_DROP,
                    note="rows this policy held back (or let through, with other policies) may change who sees what")


def creating(s: str, t: str, policy: PolicyState) -> list[Statement]:
    statements = [ddl.render(ddl.create_policy(s, t, policy))]
    if policy.comment is not None:
        statements.append(_comment(s, t, policy))
    return statements


def _comment(s: str, t: str, policy: PolicyState) -> Statement:
    return ddl.comment("POLICY", sql.SQL("{} ON {}").format(sql.Identifier(policy.name), ddl.ident(s, t)),
                       policy.comment)


def _alterable(old: PolicyState, new: PolicyState) -> bool:
    """ALTER POLICY sets roles and expressions, but cannot remove a clause."""
    return ((old.command, old.permissive) == (new.command, new.permissive)
            and not (old.using is not None and new.using is None)
            and not (old.with_check is not None and new.with_check is None))


def drop(s: str, t: str, name: str) -> Statement:
    return ddl.render(sql.SQL("DROP POLICY {} ON {}").format(sql.Identifier(name), ddl.ident(s, t)))


def _address(ctx: Context, s: str, t: str, name: str) -> Address:
    return Address("policy", ctx.db, s, t, name)


def policy_view(p: PolicyState) -> dict[str, object]:
    view: dict[str, object] = {"for": p.command, "to": list(p.roles), "as": "permissive" if p.permissive else
                               "restrictive"}
    if p.using is not None:
        view["using"] = p.using
    if p.with_check is not None:
        view["with_check"] = p.with_check
    if p.comment is not None:
        view["comment"] = p.comment
    return view
