"""Functions in C and internal: CREATE FUNCTION makes the server load native code (a shared
library's initialisation, whatever check_function_bodies says), so a playbook cannot declare one,
even for a plan's rolled-back build; the live ones made by hand stay visible as unmanaged."""

from __future__ import annotations

import json
import socket

import pytest
import yaml

from erpprov.errors import ErpprovError
from erpprov.load.project import load_project
from tests.helpers import PLAYBOOK, assert_clean_error, erpprov, write_project

REFUSED = "native code"


def _project(tmp_path, port: int, entry: str, key: str = "functions"):  # type: ignore[no-untyped-def]
    playbook = ("- name: p\n  hosts: all\n  databases:\n    - name: erp\n"
                f"      {key}:\n        - {entry}\n")
    return write_project(tmp_path, playbook, {"pg_host": "127.0.0.1", "pg_port": port, "pg_user": "nobody",
                                              "pg_password": "unused", "pg_connect_timeout": 2}, dedent=False)


@pytest.mark.parametrize(("key", "entry", "named"), [
    ("functions", "{name: my_len, arguments: [{type: text}], returns: int, language: c, body: textlen}",
     "function public.my_len"),
    ("functions", "{name: f, schema: app, returns: int, language: C, body: textlen}", "function app.f"),
    ("functions", "{name: f, returns: int, language: '\"c\"', body: textlen}", "function public.f"),
    ("procedures", "{name: p, language: Internal, body: textlen}", "procedure public.p"),
])
def test_a_playbook_function_in_c_or_internal_is_refused_when_loaded(tmp_path, key, entry, named):
    root = _project(tmp_path, 1, entry, key)
    with pytest.raises(ErpprovError, match=REFUSED) as refused:
        load_project(root / PLAYBOOK, root / "inventory.yaml", environ={})
    assert named in refused.value.message and f"{key}.0.language" in refused.value.message
    assert refused.value.location is not None and refused.value.location.line == 6
    assert "extension" in (refused.value.hint or "")


def test_plan_and_apply_stop_at_the_refusal_before_connecting(tmp_path):
    """The inventory points at a port bound by no listener: any connection attempt would fail
    with a connection error, so the refusal proves nothing was sent."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        entry = ("{name: lib_init, returns: int, language: c, "
                 "body: \"$libdir/somewhere_else\", comment: would run _PG_init}")
        root = _project(tmp_path, closed.getsockname()[1], entry)
        for command in ("validate", "plan", "apply"):
            run = erpprov(root, command)
            assert_clean_error(run, f"{PLAYBOOK}:6:", "function public.lib_init", REFUSED)
            assert "connect" not in run.stderr.split("hint:")[0], run


@pytest.mark.contrib
def test_hand_made_functions_in_c_and_internal_are_unmanaged_left_out_of_export_and_never_pruned(tmp_path, pg, conn):
    conn.execute("CREATE FUNCTION public.my_len(text) RETURNS int LANGUAGE internal IMMUTABLE STRICT AS 'textlen';"
                 "CREATE FUNCTION public.my_hash(text) RETURNS int LANGUAGE c IMMUTABLE STRICT"
                 "  AS '$libdir/citext', 'citext_hash';"
                 "CREATE FUNCTION public.plus_one(int) RETURNS int LANGUAGE sql AS 'SELECT $1 + 1';"
                 "CREATE ROLE fn_caller; REVOKE EXECUTE ON FUNCTION my_len(text) FROM PUBLIC;"
                 "GRANT EXECUTE ON FUNCTION my_len(text) TO fn_caller")
    assert conn.execute("SELECT my_len('four'), my_hash('a') = my_hash('A')").fetchone() == (4, True)
    pg.inventory(tmp_path)
    (tmp_path / PLAYBOOK).parent.mkdir()
    # --prune: applied to this very server, the file must drop nothing either
    exported = erpprov(tmp_path, "export", "--db", pg.dbname, "--prune", "-o", str(PLAYBOOK))
    assert exported.returncode == 0, exported
    text = (tmp_path / PLAYBOOK).read_text()
    header = text.split("\n- name:")[0]
    for said in (exported.stderr, header):
        for left_out in ("function public.my_len(text) in language internal",
                         "function public.my_hash(text) in language c"):
            assert f"database {pg.dbname}: {left_out} (a playbook cannot declare it" in said, said
        assert "plus_one" not in said
    [database] = yaml.safe_load(text)[0]["databases"]
    assert database["prune"] is True
    assert [f["name"] for f in database["functions"]] == ["plus_one"]  # the file loads: nothing in c

    plan = erpprov(tmp_path, "plan", "--detailed-exitcode", "--format", "json")
    assert plan.returncode == 0, plan  # converged: nothing dropped, nothing to create
    unmanaged = json.loads(plan.stdout)["hosts"][0]["unmanaged"]
    assert {f"function.{pg.dbname}.public.my_len(text)", f"function.{pg.dbname}.public.my_hash(text)"} <= set(
        unmanaged)
    assert f"function.{pg.dbname}.public.plus_one(integer)" not in unmanaged
