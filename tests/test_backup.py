"""Backup and restore against the real throwaway server (external driver, local client programs)."""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from psycopg import sql

from erpprov.core.target import Target
from erpprov.drivers.embedded import free_port
from erpprov.errors import ErpprovError
from erpprov.ops.backup import BackupResult, backup, restore
from tests.helpers import PLAYBOOK, load_targets

ROWS = [
    (1, "Grüße aus Köln", "ümlaut", "12.50"),
    (2, "日本語 ✓ 🚀", None, None),
    (3, None, "tab\tnewline\nbackslash\\ quote' \"dq\"", "0.00"),
    (4, "", "", "-1.25"),
]


def target_of(tmp: Path, pg, **host_vars: object) -> Target:
    playbook = f"""
    - name: backups
      hosts: dev
      databases:
        - name: {pg.dbname}
    """
    [target] = load_targets(tmp, pg, playbook, **host_vars)
    return target


def seed(pg, dbname: str | None = None) -> None:
    with pg.connect(dbname) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text, note text, price numeric(10,2))")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO items VALUES (%s, %s, %s, %s)", ROWS)


def rows(pg, dbname: str | None = None) -> list[tuple]:
    with pg.connect(dbname) as conn:
        found = conn.execute("SELECT id, name, note, price::text FROM items ORDER BY id").fetchall()
    return [tuple(r) for r in found]


def recreate(pg, dbname: str) -> None:
    with pg.connect("postgres") as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(dbname)))


def database_exists(pg, dbname: str) -> bool:
    with pg.connect("postgres") as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is not None


def assert_sound(result: BackupResult) -> None:
    """The file is whole, private, and the result describes it; nothing else was left beside it."""
    data = result.path.read_bytes()
    assert result.size == len(data) > 0
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o600
    assert [p.name for p in result.path.parent.iterdir()] == [result.path.name]


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_round_trip_into_the_recreated_database(pg, tmp_path: Path, fmt: str) -> None:
    seed(pg)
    target = target_of(tmp_path, pg)
    lines: list[str] = []
    result = backup(target, database=pg.dbname, out=tmp_path / "out" / f"b.{fmt}", fmt=fmt,  # type: ignore[arg-type]
                    progress=lines.append)
    assert_sound(result)
    assert result.path.read_bytes().startswith(b"PGDMP") == (fmt == "custom")
    assert lines and "written" in lines[0]
    recreate(pg, pg.dbname)
    restored = restore(target, result.path, database=pg.dbname)
    assert restored.size == result.size and restored.format == fmt and not restored.created
    assert rows(pg) == ROWS


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_round_trip_into_a_new_database_keeps_owners(pg, tmp_path: Path, fmt: str) -> None:
    seed(pg)
    new_db = f"{pg.dbname}_copy"
    with pg.connect() as conn:
        conn.execute("CREATE ROLE t_backup_owner")
        conn.execute("ALTER TABLE items OWNER TO t_backup_owner")
    target = target_of(tmp_path, pg)
    result = backup(target, database=pg.dbname, out=tmp_path / f"b.{fmt}", fmt=fmt)  # type: ignore[arg-type]
    restored = restore(target, result.path, database=pg.dbname, into=new_db)
    assert restored.created and restored.database == new_db
    assert rows(pg, new_db) == ROWS
    with pg.connect(new_db) as conn:
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'items'").fetchone()
    assert owner == ("t_backup_owner",)


def test_default_file_name_under_the_project(pg, tmp_path: Path) -> None:
    seed(pg)
    target = target_of(tmp_path, pg)
    plain = backup(target, database=pg.dbname)
    assert plain.path.parent == (tmp_path / "backups").absolute()
    assert re.fullmatch(rf"{pg.dbname}_\d{{8}}_\d{{6}}\.sql", plain.path.name)
    assert stat.S_IMODE(plain.path.parent.stat().st_mode) == 0o700
    assert_sound(plain)
    custom = backup(target, database=pg.dbname, fmt="custom")
    assert custom.path.suffix == ".dump"


def test_an_existing_file_is_never_overwritten(pg, tmp_path: Path) -> None:
    seed(pg)
    out = tmp_path / "b.sql"
    out.write_text("precious")
    with pytest.raises(ErpprovError, match="already exists"):
        backup(target_of(tmp_path, pg), database=pg.dbname, out=out)
    assert out.read_text() == "precious"


def test_restore_into_a_non_empty_database_needs_yes(pg, tmp_path: Path) -> None:
    seed(pg)
    target = target_of(tmp_path, pg)
    result = backup(target, database=pg.dbname, out=tmp_path / "b" / "x.sql")
    with pg.connect() as conn:
        conn.execute("UPDATE items SET name = 'changed after the backup' WHERE id = 1")
    changed = rows(pg)
    with pytest.raises(ErpprovError, match=r"refusing to restore into .* not empty") as info:
        restore(target, result.path, database=pg.dbname)
    assert "--yes" in str(info.value) and "--into" in str(info.value)
    questions: list[str] = []
    with pytest.raises(ErpprovError, match="refusing"):
        restore(target, result.path, database=pg.dbname, confirm=lambda q: questions.append(q) or False)
    assert questions and pg.dbname in questions[0]
    assert rows(pg) == changed
    restore(target, result.path, database=pg.dbname, confirm=lambda q: True)
    assert rows(pg) == ROWS


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_yes_replaces_the_contents(pg, tmp_path: Path, fmt: str) -> None:
    seed(pg)
    target = target_of(tmp_path, pg)
    result = backup(target, database=pg.dbname, out=tmp_path / f"b.{fmt}", fmt=fmt)  # type: ignore[arg-type]
    with pg.connect() as conn:
        conn.execute("DELETE FROM items WHERE id > 1")
        conn.execute("INSERT INTO items VALUES (99, 'new', NULL, NULL)")
    restore(target, result.path, database=pg.dbname, yes=True)
    assert rows(pg) == ROWS


def test_into_an_existing_database_is_refused(pg, tmp_path: Path) -> None:
    seed(pg)
    target = target_of(tmp_path, pg)
    result = backup(target, database=pg.dbname, out=tmp_path / "b.sql")
    with pytest.raises(ErpprovError, match="already exists; --into restores into a new database only"):
        restore(target, result.path, database=pg.dbname, into=pg.dbname)


def test_truncated_custom_dump_changes_nothing(pg, tmp_path: Path) -> None:
    seed(pg)
    target = target_of(tmp_path, pg)
    result = backup(target, database=pg.dbname, out=tmp_path / "b.dump", fmt="custom")
    cut = tmp_path / "cut.dump"
    cut.write_bytes(result.path.read_bytes()[: result.size // 2])
    with pg.connect() as conn:
        conn.execute("UPDATE items SET note = 'live' WHERE id = 1")
    before = rows(pg)
    with pytest.raises(ErpprovError) as info:
        restore(target, cut, database=pg.dbname, yes=True)
    message = str(info.value)
    assert "nothing was changed" in message and "pg_restore" in message
    assert rows(pg) == before
    new_db = f"{pg.dbname}_cut"
    with pytest.raises(ErpprovError):
        restore(target, cut, database=pg.dbname, into=new_db)
    assert not database_exists(pg, new_db)  # the database made for the failed restore is gone again


def test_garbage_sql_names_the_failing_line_and_changes_nothing(pg, tmp_path: Path) -> None:
    seed(pg)
    garbage = tmp_path / "garbage.sql"
    garbage.write_text("CREATE TABLE made_by_garbage (x int);\nDELETE FROM items;\nthis is not sql at all;\n")
    with pytest.raises(ErpprovError) as info:
        restore(target_of(tmp_path, pg), garbage, database=pg.dbname, yes=True)
    message = str(info.value)
    assert f"psql:{garbage}:3: ERROR:  syntax error" in message
    assert "this is not sql at all;" in message
    assert rows(pg) == ROWS
    with pg.connect() as conn:
        assert conn.execute("SELECT to_regclass('made_by_garbage')").fetchone() == (None,)


def test_a_bad_statement_in_the_middle_is_named(pg, tmp_path: Path) -> None:
    seed(pg)
    target = target_of(tmp_path, pg)
    good = backup(target, database=pg.dbname, out=tmp_path / "b.sql").path.read_text()
    broken = tmp_path / "broken.sql"
    broken.write_text(good.replace("CREATE TABLE public.items", "CREATE TABLE public.items_x (id int);\n"
                                   "SELECT no_such_function();\nCREATE TABLE public.items", 1))
    recreate(pg, pg.dbname)
    with pytest.raises(ErpprovError, match=r"psql:.*broken\.sql:\d+: ERROR:  function no_such_function\(\) does "
                                           r"not exist[\s\S]*the failing statement, line \d+: "
                                           r"SELECT no_such_function\(\);"):
        restore(target, broken, database=pg.dbname)
    with pg.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'items%'").fetchone() == (0,)


MULTI_LINE = """\
-- a hand-written script: psql reports the line a statement ends on
SELECT 1;

CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RETURN 1;
END
$$;

CREATE TABLE x (
  a int,
  b no_such_type
);
"""

COPY_DATA = """\
CREATE TABLE y (a int);
COPY y (a) FROM stdin;
1
not a number
\\.
SELECT 1;
"""


@pytest.mark.parametrize("script, expected", [
    (MULTI_LINE, r":13: ERROR:  type \"no_such_type\" does not exist[\s\S]*lines 10-13, beginning: CREATE TABLE x \("),
    (COPY_DATA, r"invalid input syntax for type integer[\s\S]*beginning: COPY y \(a\) FROM stdin;"),
])
def test_a_multi_line_statement_is_named_by_its_first_line(pg, tmp_path: Path, script: str, expected: str) -> None:
    path = tmp_path / "script.sql"
    path.write_text(script)
    with pytest.raises(ErpprovError, match=expected):
        restore(target_of(tmp_path, pg), path, database=pg.dbname)
    with pg.connect() as conn:
        assert conn.execute("SELECT to_regproc('f'), to_regclass('y')").fetchone() == (None, None)


def test_truncated_plain_dump_is_refused_before_running(pg, tmp_path: Path) -> None:
    seed(pg)
    target = target_of(tmp_path, pg)
    result = backup(target, database=pg.dbname, out=tmp_path / "b.sql")
    cut = tmp_path / "cut.sql"
    cut.write_bytes(result.path.read_bytes()[: result.size * 2 // 3])
    recreate(pg, pg.dbname)
    with pytest.raises(ErpprovError, match="truncated pg_dump file"):
        restore(target, cut, database=pg.dbname)
    with pg.connect() as conn:
        assert conn.execute("SELECT to_regclass('public.items')").fetchone() == (None,)


@pytest.mark.parametrize("content, expected", [(None, "backup file not found"), (b"", "is empty"),
                                               (b"\x00\x01\x02binary", "neither a pg_dump archive")])
def test_files_that_are_not_backups(pg, tmp_path: Path, content: bytes | None, expected: str) -> None:
    path = tmp_path / "b.sql"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ErpprovError, match=expected):
        restore(target_of(tmp_path, pg), path, database=pg.dbname)


def test_wrong_database(pg, tmp_path: Path) -> None:
    seed(pg)
    target = target_of(tmp_path, pg)
    with pytest.raises(ErpprovError, match='database "no_such_db" does not exist'):
        backup(target, database="no_such_db", out=tmp_path / "out" / "b.sql")
    assert list((tmp_path / "out").iterdir()) == []
    good = backup(target, database=pg.dbname, out=tmp_path / "b.sql")
    with pytest.raises(ErpprovError, match="database no_such_db does not exist"):
        restore(target, good.path, database="no_such_db")


def test_server_down(pg, tmp_path: Path) -> None:
    target = target_of(tmp_path, pg, pg_port=free_port())
    with pytest.raises(ErpprovError, match=r"(?i)connection refused") as info:
        backup(target, database=pg.dbname, fmt="custom")
    assert "is the server running" in str(info.value)
    assert pg.password not in str(info.value)
    assert list((tmp_path / "backups").iterdir()) == []
    dump = tmp_path / "x.sql"
    dump.write_text("SELECT 1;\n")
    with pytest.raises(ErpprovError, match="cannot connect"):
        restore(target, dump, database=pg.dbname)


def test_permission_denied(pg, tmp_path: Path) -> None:
    seed(pg)
    with pg.connect() as conn:
        conn.execute("CREATE ROLE t_backup_reader LOGIN PASSWORD 'reader-secret-pw'")
    target = target_of(tmp_path, pg, pg_user="t_backup_reader", pg_password="reader-secret-pw")
    with pytest.raises(ErpprovError, match="permission denied for table items") as info:
        backup(target, database=pg.dbname)
    assert "reader-secret-pw" not in str(info.value)
    assert list((tmp_path / "backups").iterdir()) == []
    dump = tmp_path / "x.sql"
    dump.write_text("CREATE TABLE public.sneaky (x int);\n")
    other = f"{pg.dbname}_empty"
    with pg.connect("postgres") as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(other)))
    with pg.connect(other) as conn:  # in the database restored into: a REVOKE acts on its own database
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # PG 15's default already; explicit here
    with pytest.raises(ErpprovError, match="permission denied for schema public"):
        restore(target, dump, database=other)


# --- the commands ---------------------------------------------------------------------------


def project_args(tmp: Path, pg) -> list[str]:
    target_of(tmp, pg)  # writes playbooks/dev.yaml and inventory.yaml
    return [str(tmp / PLAYBOOK), "-i", str(tmp / "inventory.yaml")]


def test_cli_backup_and_restore(pg, tmp_path: Path) -> None:
    from erpprov.cli.commands.backup import backup_cmd, restore_cmd

    seed(pg)
    args = project_args(tmp_path, pg)
    runner = CliRunner()
    done = runner.invoke(backup_cmd, [*args, "--format", "custom"])  # --db defaults to the play's database
    assert done.exit_code == 0, done.output
    [path] = (tmp_path / "backups").iterdir()
    assert path.suffix == ".dump"
    data = path.read_bytes()
    assert f"sha256: {hashlib.sha256(data).hexdigest()}" in done.output
    assert f"size:   {len(data)} bytes" in done.output
    assert pg.password not in done.output

    refused = runner.invoke(restore_cmd, [str(path), *args])
    assert refused.exit_code == 1
    assert "refusing to restore" in refused.output and "Traceback" not in refused.output

    new_db = f"{pg.dbname}_cli"
    restored = runner.invoke(restore_cmd, [str(path), *args, "--into", new_db])
    assert restored.exit_code == 0, restored.output
    assert f"restored {len(data)} bytes into the new database {new_db}" in restored.output
    assert rows(pg, new_db) == ROWS

    again = runner.invoke(restore_cmd, [str(path), *args, "--db", new_db, "--yes"])
    assert again.exit_code == 0, again.output
    assert f"restored {len(data)} bytes into {new_db}" in again.output


def test_cli_errors_are_one_message(pg, tmp_path: Path) -> None:
    from erpprov.cli.commands.backup import backup_cmd, restore_cmd

    args = project_args(tmp_path, pg)
    runner = CliRunner()
    missing = runner.invoke(restore_cmd, [str(tmp_path / "nope.sql"), *args])
    assert missing.exit_code == 1 and "error: backup file not found" in missing.output
    wrong = runner.invoke(backup_cmd, [*args, "--db", "no_such_db"])
    assert wrong.exit_code == 1 and 'database "no_such_db" does not exist' in wrong.output
    assert "Traceback" not in wrong.output


def test_client_programs_get_every_connection_setting_of_the_library() -> None:
    """Whatever erpprov's own connections set (TLS files, timeouts) reaches pg_dump/psql/pg_restore,
    through the environment, never argv."""
    from erpprov.core.model import Connection
    from erpprov.drivers.clients import client_env

    conn = Connection(pg_host="db.example", pg_port=5433, pg_user="admin", pg_password="pw", pg_database="erp",
                      pg_sslmode="verify-full", pg_sslrootcert="/ca.crt", pg_sslcert="/c.crt", pg_sslkey="/c.key",
                      pg_connect_timeout=7)
    env = client_env(conn)  # a setting conninfo gains without a libpq variable here fails: KeyError
    assert {key: env[key] for key in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE",
                                      "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGCONNECT_TIMEOUT")} == {
        "PGHOST": "db.example", "PGPORT": "5433", "PGUSER": "admin", "PGPASSWORD": "pw", "PGDATABASE": "erp",
        "PGSSLMODE": "verify-full", "PGSSLROOTCERT": "/ca.crt", "PGSSLCERT": "/c.crt", "PGSSLKEY": "/c.key",
        "PGCONNECT_TIMEOUT": "7"}


# --- a plain file must not leave the restore's one transaction ------------------------------------

HOSTILE = {
    "commit": "DELETE FROM items;\nCOMMIT;\nthis is not sql;\n",
    "end_then_drop": "DELETE FROM items;\nend ;\nDROP TABLE items;\n",
    "savepoint_release": "SAVEPOINT s;\nDELETE FROM items;\nRELEASE SAVEPOINT s;\nCOMMIT;\n",
    "prepare_transaction": "DELETE FROM items;\nPREPARE TRANSACTION 'restore';\n",
    "hidden_in_atomic": "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN; DELETE FROM items; COMMIT; END;\n",
    "shell": "DELETE FROM items;\n\\! touch MARKER\n",
    "shell_after_a_statement": "SELECT 1; \\! touch MARKER\n",
    "shell_after_copy_in_a_string": "SELECT $$\nCOPY items FROM stdin;\n$$;\n\\! touch MARKER\n\\.\n",
    "output_redirect": "\\o MARKER\nSELECT 1;\n",
    "connect_elsewhere": "\\connect postgres\nDROP TABLE IF EXISTS items;\n",
    "lexer_switch": "SET standard_conforming_strings = off;\nSELECT 'a\\' ' \\! touch MARKER '\n;\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_plain_file_that_could_leave_the_transaction_is_refused(pg, tmp_path: Path, name: str) -> None:
    """COMMIT and its kin would keep what ran before them; psql meta-commands run shell commands and
    write files on this machine. Either is refused before anything runs."""
    seed(pg)
    marker = tmp_path / "pwned"
    hostile = tmp_path / f"{name}.sql"
    hostile.write_text(HOSTILE[name].replace("MARKER", str(marker)))
    target = target_of(tmp_path, pg)
    with pytest.raises(ErpprovError, match=r"not allowed.*nothing was changed") as info:
        restore(target, hostile, database=pg.dbname, yes=True)
    assert f"{hostile}:" in str(info.value)  # names the line
    new_db = f"{pg.dbname}_hostile"
    with pytest.raises(ErpprovError, match="not allowed"):
        restore(target, hostile, database=pg.dbname, into=new_db)
    assert rows(pg) == ROWS
    assert not marker.exists(), "a psql meta-command ran"
    assert not database_exists(pg, new_db)
    with pg.connect("postgres") as admin:
        assert admin.execute("SELECT count(*) FROM pg_prepared_xacts").fetchone() == (0,)


def test_real_dumps_with_look_alike_contents_still_restore(pg, tmp_path: Path) -> None:
    """pg_dump's own output, with data, comments and function bodies that look like what is refused."""
    seed(pg)
    tricky = ["COMMIT;", "\\! touch MARKER", "\\.", "\\connect postgres", "line\n\\! x\nCOMMIT;", "end;"]
    with pg.connect() as conn:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO items (id, note) VALUES (%s, %s)",
                            [(100 + i, text) for i, text in enumerate(tricky)])
        conn.execute("COMMENT ON TABLE items IS 'COMMIT; \\! touch MARKER'")
        conn.execute("CREATE FUNCTION atomic_body() RETURNS int LANGUAGE sql BEGIN ATOMIC "
                     "SELECT CASE WHEN 1 = 1 THEN 1 END; SELECT 2; END")
        conn.execute("CREATE PROCEDURE plpgsql_body() LANGUAGE plpgsql AS $body$ BEGIN "
                     "RAISE NOTICE 'COMMIT; \\! x'; END $body$")
        conn.execute("CREATE TABLE \"COMMIT;\" (\"\\!\" text)")
    target = target_of(tmp_path, pg)
    result = backup(target, database=pg.dbname, out=tmp_path / "tricky.sql")
    new_db = f"{pg.dbname}_tricky"
    restore(target, result.path, database=pg.dbname, into=new_db)
    with pg.connect(new_db) as conn:
        notes = [r[0] for r in conn.execute("SELECT note FROM items WHERE id >= 100 ORDER BY id")]
        assert conn.execute("SELECT atomic_body()").fetchone() == (2,)
        assert conn.execute("SELECT obj_description('items'::regclass)").fetchone() == ("COMMIT; \\! touch MARKER",)
        assert conn.execute("SELECT to_regclass('\"COMMIT;\"') IS NOT NULL").fetchone() == (True,)
    assert notes == tricky
    restore(target, result.path, database=pg.dbname, yes=True)  # over itself too
    assert rows(pg)[:len(ROWS)] == ROWS


def test_pg_dumps_restrict_lines_pass_and_lines_are_counted_past_them(tmp_path: Path) -> None:
    from erpprov.ops.restorecheck import check_plain_dump

    dump = tmp_path / "d.sql"
    dump.write_text("--\n-- c\n--\n\n\\restrict 1e5abc\nSET standard_conforming_strings = on;\n"
                    "COPY t (a) FROM stdin;\n\\N\n\\.\n\n\\unrestrict 1e5abc\n")
    check_plain_dump(dump)
    dump.write_text(dump.read_text() + "\nSELECT 1;\nROLLBACK;\n")
    with pytest.raises(ErpprovError, match=r"d\.sql:14: transaction control \(ROLLBACK\)"):
        check_plain_dump(dump)


def test_an_archive_entry_holding_commit_is_refused(pg, tmp_path: Path) -> None:
    """pg_restore runs an entry's SQL as it stands: a COMMIT in it would end the one transaction."""
    seed(pg)
    padding = "x" * 40
    with pg.connect() as conn:
        conn.execute(f"COMMENT ON TABLE items IS '{padding}'")
    target = target_of(tmp_path, pg)
    result = backup(target, database=pg.dbname, out=tmp_path / "b.dump", fmt="custom")
    payload = "'; COMMIT; SELECT '".ljust(len(padding), "y")  # same length: the archive stays readable
    data = result.path.read_bytes()
    assert data.count(padding.encode()) == 1
    hostile = tmp_path / "hostile.dump"
    hostile.write_bytes(data.replace(padding.encode(), payload.encode()))
    with pg.connect() as conn:
        conn.execute("DELETE FROM items WHERE id > 1")
    live = rows(pg)
    with pytest.raises(ErpprovError, match=r"hostile\.dump \(as pg_restore prints it\):\d+: transaction control"):
        restore(target, hostile, database=pg.dbname, yes=True)
    assert rows(pg) == live
    restore(target, result.path, database=pg.dbname, yes=True)  # the untouched archive restores
    assert rows(pg) == ROWS
