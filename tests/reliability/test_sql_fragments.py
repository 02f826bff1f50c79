"""`plan` must be safe to run on a stranger's pull request: a type, default, check, generated column
or index expression from the playbook reaches the server only once proven to be one type or one
expression (erpprov.core.fragments), and the scratch build sends one statement per extended-protocol
message, so even an unproven string could not end the transaction."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import psycopg
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erpprov.core import fragments, model
from erpprov.errors import ErpprovError
from erpprov.load.project import load_project
from erpprov.state.canon import canonicalize
from tests.helpers import MiB, assert_clean_error, erpprov, pg_env, reachable_tempdir, server_vars, write_project

from .conftest import snapshot
from .kinds import covers

COMMITS = "integer; COMMIT; CREATE TABLE pwned(x int)"


def _shell_payload(marker: Path) -> str:
    return f"0; COPY (SELECT 1) TO PROGRAM 'touch {marker}'"


def _table(column: dict[str, object], **extra: object) -> dict[str, object]:
    return {"name": "t", "columns": [{"name": "id", "type": "integer"}, {"name": "c", **column}], **extra}


# Every place a playbook string becomes SQL, each given the payload `p`.
PLACES = {
    "type": lambda p: _table({"type": p}),
    "default": lambda p: _table({"type": "integer", "default": p}),
    "generated": lambda p: _table({"type": "integer", "generated": p}),
    "check": lambda p: _table({"type": "integer"}, checks=[{"expression": p}]),
    "index expression": lambda p: _table({"type": "integer"}, indexes=[{"columns": [p]}]),
    "index expression with ordering": lambda p: _table({"type": "integer"}, indexes=[{"columns": [f"{p} DESC"]}]),
    "index predicate": lambda p: _table({"type": "integer"}, indexes=[{"columns": ["c"], "where": p}]),
}
PAYLOADS = [
    COMMITS,
    "0; COPY (SELECT 1) TO PROGRAM 'id'",
    "1) + (2",  # balanced by its wrapper, not by itself
    "0) ; DROP TABLE canary; SELECT (1",
    "integer -- swallows what follows",
    "1 /* unterminated",
    "'unterminated",
    "$$ unterminated",
    "1); COMMIT; --",
    "integer) ; ROLLBACK ; CREATE TABLE pwned (x int",
    "",
]


def _playbook(table: dict[str, object], db: str = "erp") -> str:
    import yaml

    return yaml.safe_dump([{"name": "p", "hosts": "all", "databases": [{"name": db, "tables": [table]}]}])


@covers("sql_fragment_injection")
@pytest.mark.parametrize("place", sorted(PLACES))
def test_every_place_refuses_what_is_not_one_fragment(tmp_path, place):
    root = write_project(tmp_path, "")
    playbook = root / "playbooks" / "dev.yaml"
    for payload in PAYLOADS:
        if place == "type" and payload == "1) + (2":
            continue  # not a type in any case; covered by the others
        playbook.write_text(_playbook(PLACES[place](payload)))
        with pytest.raises(ErpprovError) as caught:
            load_project(playbook, root / "inventory.yaml", environ={})
        message = str(caught.value)
        assert "dev.yaml:" in message, message  # points at the line
        assert ("type" if place == "type" else "expression") in message or "empty" in message, message


def test_legitimate_fragments_are_accepted():
    for text in ["integer", "varchar(20)[]", "timestamp with time zone", '"My Type"', "double precision",
                 "numeric(10, 2)", "interval day to second", "bigserial", "public.citext"]:
        assert fragments.type_name(text) == text
    for text in ["now()", "'draft'", "x > 0 AND y < 3", "lower(name)", "a -- a comment\n", "$$a;b$$ || ';'",
                 "CASE WHEN a THEN (1) ELSE (2) END", "(ARRAY[1, 2])[1]", "'it''s'", "(a)::text COLLATE \"C\""]:
        assert fragments.expression(text) == text
    assert fragments.index_entry("lower(name) DESC NULLS LAST", ["name"])[:4] == ("lower(name)", False, True, False)
    assert fragments.index_entry("we;rd", ["we;rd"])[:4] == ("we;rd", True, False, False)  # a column, quoted
    # COLLATE and an operator class after the key, as in SQL; each proven to be one name
    assert fragments.index_entry('lower(name) COLLATE "C" text_pattern_ops DESC', ["name"]) == (
        "lower(name)", False, True, True, '"C"', "text_pattern_ops")
    assert fragments.index_entry("my name public.ops", ["my name"]) == ("my name", True, False, False, None,
                                                                          "public.ops")
    for bad in ["=; DROP TABLE x", "-- x", "=/*", "OPERATOR(a.=) x"]:
        with pytest.raises(ValueError):
            model._operator(bad)
    for bad in ["name text_ops; DROP TABLE x", "name text_ops) x", 'name "ops"" x', "name COLLATE C;"]:
        with pytest.raises(ValueError):
            fragments.index_entry(bad, ["name"])


def test_a_grants_function_signature_is_one_signature(tmp_path):
    """A grant's function travels to the server as a value (to_regprocedure), never as SQL; still,
    what is not one function signature is refused at load, with its line, as every other fragment."""
    for text in ["add(integer, integer)", "now()", '"My Fn"(numeric(10, 2), int[])', "f(public.citext)"]:
        assert fragments.function_signature(text) == text
    root = write_project(tmp_path, "")
    playbook = root / "playbooks" / "dev.yaml"
    for bad in [*PAYLOADS, "f", "s.f(int)", "f(x int)", "f(variadic int[])", "f(int), g(int)", "f(int) TO x"]:
        with pytest.raises(ValueError):
            fragments.function_signature(bad)
        grant = {"to": "PUBLIC", "privileges": ["EXECUTE"], "functions": [bad]}
        playbook.write_text(yaml.safe_dump([{"name": "p", "hosts": "all", "databases": [
            {"name": "erp", "schemas": [{"name": "public", "grants": [grant]}]}]}]))
        with pytest.raises(ErpprovError) as caught:
            load_project(playbook, root / "inventory.yaml", environ={})
        assert "dev.yaml:" in str(caught.value) and "function signature" in str(caught.value), str(caught.value)


@covers("sql_fragment_injection")
@pytest.mark.parametrize("offline", [False, True], ids=["plan", "plan --offline"])
def test_plan_neither_runs_nor_commits_playbook_sql(pg, offline):
    """The two payloads of the review, through the CLI: refused before any server sees them."""
    base = reachable_tempdir()
    os.chmod(base, 0o777)  # so that the server's account could leave the marker, were it to run
    marker = base / "ran"
    try:
        for payload, place in [(COMMITS, "type"), (_shell_payload(marker), "default")]:
            root = write_project(base / place, _playbook(PLACES[place](payload), pg.dbname), server_vars(pg))
            args = ("plan", "--offline") if offline else ("plan",)
            run = erpprov(root, *args, env=pg_env(pg), timeout=120, mem=1024 * MiB)
            assert_clean_error(run, "dev.yaml:", f"single {'type' if place == 'type' else 'expression'}")
        assert not marker.exists(), "a shell command ran on the server"
        with pg.connect() as conn:
            assert conn.execute("SELECT to_regclass('public.pwned')").fetchone()[0] is None
    finally:
        import shutil

        shutil.rmtree(base, ignore_errors=True)


def _unproven_table(column_type: str) -> model.Table:
    """A table whose column type skipped the loader's proof, as a bug elsewhere might let through."""
    columns = [model.Column.model_construct(name="id", type="integer", nullable=True, default=None,
                                            primary_key=False, unique=False, identity=None, generated=None,
                                            collation=None, comment=None, renamed_from=None),
               model.Column.model_construct(name="c", type=column_type, nullable=True, default=None,
                                            primary_key=False, unique=False, identity=None, generated=None,
                                            collation=None, comment=None, renamed_from=None)]
    return model.Table.model_construct(name="t", schema_="public", columns=columns, foreign_keys=[], unique=[],
                                       checks=[], indexes=[], comment=None, owner=None, grants=[],
                                       renamed_from=None)


def test_scratch_build_holds_one_statement_per_message(pg):
    """The second wall: a multi-statement string that got past the proof is refused by the server
    itself, and the scratch transaction is still rolled back whole."""
    with pg.connect() as conn:
        with pytest.raises(ErpprovError, match="PostgreSQL rejects it"):
            canonicalize(conn, [_unproven_table(COMMITS)])
        assert conn.execute("SELECT to_regclass('public.pwned')").fetchone()[0] is None
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


_TOKENS = ["1", "a", "integer", "text", "(", ")", "[", "]", ";", " ", "\n", "--", "/*", "*/", "'", "$$", "\\",
           "+", "::", ",", "COMMIT", "ROLLBACK", "SELECT", "CREATE TABLE pwned (x int)", "E'", "\"", "now()"]


@covers("sql_fragment_injection")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=12).map("".join), st.sampled_from(sorted(PLACES)))
def test_token_soup_is_refused_or_stays_inside_the_scratch_build(pg, soup, place):
    """Whatever the loader accepts, the scratch build of `plan` ends with nothing changed: either
    a clean error or a canonical table, and the database exactly as before."""
    spec = PLACES[place](soup)
    try:
        table = model.Table.model_validate(spec)
    except ValueError:
        return  # refused with a message: nothing reached a server
    with pg.connect() as conn:
        before = snapshot(pg.connect, [pg.dbname])
        with contextlib.suppress(ErpprovError):
            canonicalize(conn, [table])
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert snapshot(pg.connect, [pg.dbname]) == before


def test_proofs_follow_the_server_lexer_for_backslashes(pg):
    """An expression is proven with standard_conforming_strings on; erpprov's sessions keep it on,
    so a backslash cannot end a string for the server that did not end for the proof."""
    text = "'a\\' || ';COMMIT;--'"
    assert fragments.expression(text) == text
    with pg.connect() as conn:
        database = psycopg.sql.Identifier(pg.dbname).as_string(conn)
        conn.execute(f"ALTER DATABASE {database} SET standard_conforming_strings = off")
    from erpprov.core.model import Connection
    from erpprov.postgres.connect import connect

    settings_ = Connection.model_validate({"pg_host": pg.host, "pg_port": pg.port, "pg_user": pg.user,
                                           "pg_password": pg.password, "pg_database": pg.dbname})
    with connect(settings_) as conn:
        assert conn.execute("SHOW standard_conforming_strings").fetchone()[0] == "on"
