"""The diff of views and materialized views (pure): queries compared as the server prints them.

A view whose columns keep their names and types (new ones only at the end) is replaced in place
(CREATE OR REPLACE VIEW); anything else drops it and creates it again, which breaks what uses it
(hazard `breaks_callers`). A materialized view with another query is rebuilt: its rows are
computed again, hazard `deletes_data`.

Dropping a view takes the views that read it along (pg_depend, read live): the plan drops them
too, dependents first, and creates them again afterwards — from the file when it declares them,
else from their live definition — with their owner, comment and grants, all in the database's
one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from psycopg import sql

from erpprov.core import model
from erpprov.core.actions import Action, Hazard, Op, Phase
from erpprov.core.address import Address
from erpprov.core.cluster import ObjectRef, Privileges
from erpprov.core.schema_objects import ViewState
from erpprov.core.tables import IndexState
from erpprov.diff.privileges import grant_statements
from erpprov.diff.result import Result
from erpprov.diff.schema_objects import declared_renames, owner_and_comment
from erpprov.diff.tables.indexes import creating, index_view
from erpprov.diff.tables.match import match
from erpprov.errors import ErpprovError
from erpprov.postgres import schema_ddl as ddl
from erpprov.postgres import table_ddl, view_ddl
from erpprov.postgres.ddl import render
from erpprov.postgres.naming import quote

Key = tuple[str, str]
_RENAMES, _DROPS, _RECREATES, _OTHERS = -2000, -1000, 0, 1000  # Action.order bands within Phase.VIEW


def _kind(materialized: bool) -> str:
    return "MATERIALIZED VIEW" if materialized else "VIEW"


def _address(database: str, key: Key, materialized: bool) -> Address:
    return Address("materialized_view" if materialized else "view", database, *key)


def _shape(view: ViewState) -> dict[str, object]:
    shape: dict[str, object] = {"query": view.definition, "columns": [f"{n} {t}" for n, t in view.columns]}
    if not view.materialized:
        shape |= {"security_barrier": view.security_barrier, "security_invoker": view.security_invoker,
                  "check_option": view.check_option}
    return shape


def _wanted(view: view_ddl.AnyView, canonical: ViewState | None) -> dict[str, object]:
    """What the plan shows of the desired view: the server's text when it could build it."""
    shape: dict[str, object] = {"query": canonical.definition if canonical else view.query}
    if canonical:
        shape["columns"] = [f"{n} {t}" for n, t in canonical.columns]
    if isinstance(view, model.View):
        shape |= {"security_barrier": view.security_barrier, "security_invoker": view.security_invoker,
                  "check_option": view.check_option}
    return shape


@dataclass(frozen=True)
class Uses:
    """Which relations each view reads: live (pg_depend), and desired (the scratch build); which
    functions each live view calls, and those this plan drops and creates again."""

    live: Mapping[Key, set[Key]]
    desired: Mapping[Key, set[Key]]
    calls: Mapping[Key, set[Key]] = field(default_factory=dict)
    recreated_functions: frozenset[Key] = frozenset()
    pruned: frozenset[Key] = frozenset()  # undeclared views a prune drops: taken along, not brought back
    columns: Mapping[Key, set[tuple[str, str, str]]] = field(default_factory=dict)  # view -> table columns read
    changed_columns: frozenset[tuple[str, str, str]] = frozenset()  # retyped or dropped by this plan


@dataclass
class _Views:
    """What the diff works from, and what it has decided so far."""

    declared: dict[Key, view_ddl.AnyView]
    canonical: dict[Key, ViewState]
    live: dict[Key, ViewState]
    uses: Mapping[Key, set[Key]]  # live
    desired_uses: Mapping[Key, set[Key]]
    acl: Mapping[Key, Mapping[str, Privileges]]
    database: str
    indexes: Mapping[Key, tuple[IndexState, ...]]  # of the materialized views that declare `indexes:`
    recreated: dict[Key, tuple[Hazard | None, str]] = field(default_factory=dict)  # why each is dropped

    def users(self, key: Key) -> set[Key]:
        return {view for view, used in self.uses.items() if key in used and view in self.live}


def _desired_uses(declared: Mapping[Key, view_ddl.AnyView], built: Mapping[Key, set[Key]]) -> dict[Key, set[Key]]:
    """What each declared view reads: as the scratch build saw it, else as its query names declared
    views, so a view the server could not build yet — over tables the same apply creates — is
    still created after the views it reads."""
    named = view_ddl.declared_reads(list(declared.values()))
    return {key: set(built[key]) if key in built else named[key] for key in declared}


def _closure(views: _Views) -> set[Key]:
    """The recreated views and every live view that reads one of them, at any depth."""
    dropped, pending = set(views.recreated), list(views.recreated)
    while pending:
        for user in views.users(pending.pop()) - dropped:
            dropped.add(user)
            pending.append(user)
    return dropped


def _depth(key: Key, uses: Mapping[Key, set[Key]], within: set[Key], seen: frozenset[Key] = frozenset()) -> int:
    """How many views of ``within`` stand below ``key`` (what it reads, at any depth)."""
    below = (uses.get(key, set()) & within) - seen - {key}
    return 1 + max((_depth(k, uses, within, seen | {key}) for k in below), default=-1)


def diff_views(declared: list[view_ddl.AnyView], canonical: dict[Key, ViewState], live: dict[Key, ViewState],
               uses: Uses, acl: Mapping[Key, Mapping[str, Privileges]], database: str,
               indexes: Mapping[Key, tuple[IndexState, ...]] | None = None) -> Result:
    """``acl``: each live view's grantees (given back when it is dropped and created);
    ``indexes``: the desired indexes of each materialized view that declares `indexes:` (compared
    with the live view's ``index_states`` by shape, like a table's)."""
    named = {(v.schema_, v.name): v for v in declared}
    result = Result()
    renames = declared_renames("view", ((k, (k[0], v.renamed_from)) for k, v in named.items() if v.renamed_from),
                               live)
    result.actions += [_rename(live[old], new, database) for old, new in sorted(renames.items())]
    live, uses, acl = _as_renamed(renames, live, uses, acl)
    views = _Views(named, canonical, live, uses.live, _desired_uses(named, uses.desired), acl, database,
                   indexes or {})
    in_place = [a for a in (_in_place(views, key) for key in views.declared) if a is not None]
    for key, called in uses.calls.items():  # a function dropped and created again takes its callers
        if key in live and called & uses.recreated_functions and key not in views.recreated:
            views.recreated[key] = (Hazard.BREAKS_CALLERS, "it calls a function this apply drops and creates again")
    for key, read in uses.columns.items():  # ALTER COLUMN TYPE and DROP COLUMN refuse while a view reads it
        if key in live and read & uses.changed_columns and key not in views.recreated:
            views.recreated[key] = (None, "it reads a column this apply retypes or drops: dropped around the change")
    dropped = _closure(views)
    for key in sorted(dropped):  # Action.order runs readers' drops first, and creates what they read first
        result.actions.append(_drop(views, key, dropped))
        if key in views.declared or key not in uses.pruned:
            result.actions.append(_recreate(views, key, _depth(key, uses.live, dropped)))
    result.actions += [a for a in in_place if (a.address.parts[1], a.address.parts[2]) not in dropped]
    for key in views.indexes:  # a rebuilt one gets its indexes with it
        if key in live and key not in dropped:
            result.actions += _index_changes(views, key)
    return result


def _index_changes(views: _Views, key: Key) -> list[Action]:
    """A kept materialized view's indexes made those of the file, one index at a time, as a
    table's: a new shape is that index dropped and built again, one the file does not list goes."""
    s, t = key
    pairs, missing, extra = match(views.indexes[key], views.live[key].index_states)
    db = views.database

    def address(name: str) -> Address:
        return Address("materialized_view_index", db, s, t, name)

    actions = [Action(address(h.name), Op.DELETE, Phase.DROP_INDEX, database=db, sql=(table_ddl.drop_index(s, h.name),),
                      before=index_view(h), note="not among the indexes the file declares for it") for h in extra]
    for w, h in pairs:
        statements = []
        if w.shape() != h.shape():
            actions.append(Action(address(w.name), Op.REPLACE, Phase.INDEX, database=db,
                                  sql=(table_ddl.drop_index(s, h.name), *creating(s, t, w)),
                                  before=index_view(h), after=index_view(w)))
            continue
        if w.parameters != h.parameters:
            statements += [render(sql.SQL("ALTER INDEX {} {}").format(table_ddl.ident(s, h.name), clause))
                           for clause in table_ddl.new_parameters(w.parameters, h.parameters)]
        if w.comment != h.comment:
            statements.append(table_ddl.comment("INDEX", table_ddl.ident(s, h.name), w.comment))
        if statements:
            actions.append(Action(address(h.name), Op.UPDATE, Phase.INDEX, database=db, sql=tuple(statements),
                                  before={"with": list(h.parameters), "comment": h.comment},
                                  after={"with": list(w.parameters), "comment": w.comment}))
    actions += [Action(address(w.name), Op.CREATE, Phase.INDEX, database=db, sql=tuple(creating(s, t, w)),
                       after=index_view(w)) for w in missing]
    return actions


def _rename(have: ViewState, new: Key, database: str) -> Action:
    """First of all: what reads the view, or is dropped around it, knows it by its new name."""
    kind = _kind(have.materialized)
    return Action(_address(database, new, have.materialized), Op.UPDATE, Phase.VIEW_DROP, database=database,
                  order=_RENAMES, sql=(render(ddl.alter(kind, have.schema, have.name, sql.SQL("RENAME TO {}").format(
                      sql.Identifier(new[1])))),), before={"name": have.name}, after={"name": new[1]},
                  note=f"renamed from {have.name}; its rows, indexes, grants and the views reading it are kept")


def _as_renamed(renames: Mapping[Key, Key], live: Mapping[Key, ViewState], uses: Uses,
                acl: Mapping[Key, Mapping[str, Privileges]]
                ) -> tuple[dict[Key, ViewState], Uses, dict[Key, Mapping[str, Privileges]]]:
    """The live side as it stands once the renames ran, so the rest compares like with like."""
    def new(key: Key) -> Key:
        return renames.get(key, key)
    return ({new(k): replace(v, name=new(k)[1], indexes=_moved(v, new(k))) for k, v in live.items()},
            replace(uses, live={new(k): {new(u) for u in used} for k, used in uses.live.items()},
                    calls={new(k): v for k, v in uses.calls.items()},
                    columns={new(k): v for k, v in uses.columns.items()}),
            {new(k): v for k, v in acl.items()})


def _moved(view: ViewState, key: Key) -> tuple[str, ...]:
    """Its indexes as pg_get_indexdef prints them (the relation always schema-qualified) once it is
    ``key``, so a rebuild gives them back on the renamed view."""
    was, now = (f" ON {quote(view.schema)}.{quote(n)} USING " for n in (view.name, key[1]))
    return tuple(index.replace(was, now, 1) for index in view.indexes)


def _in_place(views: _Views, key: Key) -> Action | None:
    """A declared view's action unless it must be dropped (then noted in ``views.recreated``)."""
    view, have, want = views.declared[key], views.live.get(key), views.canonical.get(key)
    materialized = isinstance(view, model.MaterializedView)
    address, kind = _address(views.database, key, materialized), _kind(materialized)
    # after the views it reads (as the scratch build saw them), then in the file's order
    order = (_OTHERS + _depth(key, views.desired_uses, set(views.declared)) * len(views.declared)
             + list(views.declared).index(key))
    after = _wanted(view, want)
    if have is None:
        extra, _, stated = owner_and_comment(kind, *key, view.owner, view.comment, None, None)
        indexes = views.indexes.get(key, ())
        return Action(address, Op.CREATE, Phase.VIEW, database=views.database, order=order,
                      sql=(*(render(s) for s in [view_ddl.create(view), *extra]),
                           *(s for ix in indexes for s in creating(*key, ix))),
                      after=after | stated | _shown_indexes(indexes))
    before = _shape(have)
    changed = {k for k in after if before.get(k) != after[k]} if want is not None else {"query"}
    statements: list[sql.Composable] = []
    note = None
    if have.materialized != materialized or (materialized and changed):
        views.recreated[key] = (Hazard.DELETES_DATA, "rebuilt: its rows are computed again")
        return None
    if changed:
        if want is not None and want.columns[:len(have.columns)] != have.columns:
            views.recreated[key] = (Hazard.BREAKS_CALLERS, "its columns change: dropped and created again")
            return None
        statements.append(view_ddl.create(view, or_replace=True))  # its options replace the old ones
        if want is None:
            note = "its query uses objects this apply creates: compared once they exist"
    extra, was, now = owner_and_comment(kind, *key, view.owner, view.comment, have.owner, have.comment)
    statements += extra
    if not statements:
        return None
    shown = changed | set(now)
    return Action(address, Op.UPDATE, Phase.VIEW, database=views.database, order=order,
                  sql=tuple(render(s) for s in statements), note=note,
                  before={k: v for k, v in (before | was).items() if k in shown},
                  after={k: v for k, v in (after | now).items() if k in shown})


def _drop(views: _Views, key: Key, dropped: set[Key]) -> Action:
    have = views.live[key]
    why = views.recreated.get(key)
    readers = sorted(".".join(k) for k in views.users(key) & dropped)
    note = why[1] if why else "dropped to be created again: it reads a view this apply recreates"
    if readers:
        note += f"; views reading it go and come back too: {', '.join(readers)}"
    hazards = (why[0],) if why and why[0] else ((Hazard.DELETES_DATA,) if have.materialized else ())
    return Action(_address(views.database, key, have.materialized), Op.DELETE, Phase.VIEW_DROP,
                  database=views.database, order=_DROPS - _depth(key, views.uses, dropped),
                  sql=(render(view_ddl.drop(have.materialized, *key)),), before=_shape(have),
                  hazards=hazards, note=note)


def _recreate(views: _Views, key: Key, depth: int) -> Action:
    """Create a dropped view again: from the file, or as it was; with what it held."""
    have = views.live[key]
    view = views.declared.get(key)
    if view is None:
        create: sql.Composable = sql.SQL("CREATE {} {} AS\n{}\n").format(
            sql.SQL(_kind(have.materialized)), sql.Identifier(*key), sql.SQL(have.definition.rstrip().rstrip(";")))
        materialized, owner, comment = have.materialized, None, None
        after = _shape(have)
    else:
        materialized = isinstance(view, model.MaterializedView)
        create, owner, comment = view_ddl.create(view), view.owner, view.comment
        after = _wanted(view, views.canonical.get(key))
    kind = _kind(materialized)
    # its indexes: the file's when it declares them, else back as the server printed them
    declared = views.indexes.get(key)
    if declared is None:
        _refuse_lost_indexes(have, views.canonical.get(key))
    statements = [create, *(sql.SQL(index) for index in (have.indexes if declared is None else ())),
                  *_restored(kind, have, views.acl.get(key, {}), owner)]
    statements += owner_and_comment(kind, *key, owner, comment, have.owner, have.comment)[0]
    indexes = [s for ix in declared or () for s in creating(*key, ix)]
    return Action(_address(views.database, key, materialized), Op.CREATE, Phase.VIEW, database=views.database,
                  order=_RECREATES + depth, sql=(*(render(s) for s in statements), *indexes),
                  after=after | _shown_indexes(declared or ()),
                  note="created again in the same transaction, with its owner, comment, grants and indexes")


def _refuse_lost_indexes(have: ViewState, want: ViewState | None) -> None:
    """An index the file leaves alone comes back as it was on the rebuilt view: one over a column
    the new query no longer has would fail there, so the plan stops and names it."""
    if want is None:  # not built: what it will have is not known
        return
    columns = {name for name, _ in want.columns}
    for index in have.index_states:
        if not index.columns <= columns:
            raise ErpprovError(
                f"materialized view {have.schema}.{have.name} is rebuilt, but its index {index.name}, which the "
                f"files do not declare, uses {', '.join(sorted(index.columns - columns))}: the new query lacks it",
                hint="declare the view's indexes (indexes: [...]), or drop that index first")


def _shown_indexes(indexes: tuple[IndexState, ...]) -> dict[str, object]:
    return {"indexes": {ix.name: index_view(ix) for ix in indexes}} if indexes else {}


def _restored(kind: str, have: ViewState, acl: Mapping[str, Privileges], owner: str | None) -> list[sql.Composable]:
    """What a dropped view held that a new one lacks: its owner, comment and grants, given back so
    that dropping and creating it changes nothing else (the file's own values come after)."""
    key = (have.schema, have.name)
    statements: list[sql.Composable] = []
    if have.owner and owner is None:
        statements.append(ddl.alter(kind, *key, sql.SQL("OWNER TO {}").format(sql.Identifier(have.owner))))
    if have.comment is not None:
        statements.append(ddl.comment(kind, *key, have.comment))
    ref = ObjectRef("table", *key)
    for grantee, privileges in sorted(acl.items()):
        if grantee != (owner or have.owner):
            statements += [sql.SQL(s.text) for s in grant_statements(ref, grantee, privileges, frozenset())]
    return statements
