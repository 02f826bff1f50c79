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
from tests.helpers import PLAYBOOK, assert_clean_error, assert_converged, erpprov, write_project

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


def _export_pruned(tmp_path, pg):  # type: ignore[no-untyped-def]
    """`export --prune` of the test's database to the project's playbook (--prune: applied to this
    very server, the file must drop nothing either): its stderr, the file and the file's header."""
    pg.inventory(tmp_path)
    (tmp_path / PLAYBOOK).parent.mkdir()
    exported = erpprov(tmp_path, "export", "--db", pg.dbname, "--prune", "-o", str(PLAYBOOK))
    assert exported.returncode == 0, exported
    text = (tmp_path / PLAYBOOK).read_text()
    return exported.stderr, text, text.split("\n- name:")[0]


@pytest.mark.contrib
def test_hand_made_functions_in_c_and_internal_are_unmanaged_left_out_of_export_and_never_pruned(tmp_path, pg, conn):
    conn.execute("CREATE FUNCTION public.my_len(text) RETURNS int LANGUAGE internal IMMUTABLE STRICT AS 'textlen';"
                 "CREATE FUNCTION public.my_hash(text) RETURNS int LANGUAGE c IMMUTABLE STRICT"
                 "  AS '$libdir/citext', 'citext_hash';"
                 "CREATE FUNCTION public.plus_one(int) RETURNS int LANGUAGE sql AS 'SELECT $1 + 1';"
                 "CREATE ROLE fn_caller; REVOKE EXECUTE ON FUNCTION my_len(text) FROM PUBLIC;"
                 "GRANT EXECUTE ON FUNCTION my_len(text) TO fn_caller;"
                 # written with the table (left out, the source would lose them): the header says so
                 "CREATE TABLE uses_len (w text, n int DEFAULT my_len('abc'), CONSTRAINT short CHECK (my_len(w) < 99),"
                 "  g int GENERATED ALWAYS AS (my_len(w)) STORED); CREATE INDEX uses_len_idx ON uses_len (my_len(w))")
    assert conn.execute("SELECT my_len('four'), my_hash('a') = my_hash('A')").fetchone() == (4, True)
    stderr, text, header = _export_pruned(tmp_path, pg)
    for said in (stderr, header):
        for left_out in ("function public.my_len(text) in language internal",
                         "function public.my_hash(text) in language c"):
            assert f"database {pg.dbname}: {left_out} (a playbook cannot declare it" in said, said
        assert "plus_one" not in said
        assert ("my_len(text) in language internal (a playbook cannot declare it: an extension that provides it "
                "can); create it before applying the file elsewhere: constraint short on public.uses_len, generated "
                "column public.uses_len.g, index uses_len_idx on public.uses_len, the default of column "
                "public.uses_len.n call it\n") in said + "\n"
    [database] = yaml.safe_load(text)[0]["databases"]
    assert database["prune"] is True
    assert [f["name"] for f in database["functions"]] == ["plus_one"]  # the file loads: nothing in c

    plan = erpprov(tmp_path, "plan", "--detailed-exitcode", "--format", "json")
    assert plan.returncode == 0, plan  # converged: nothing dropped, nothing to create
    unmanaged = json.loads(plan.stdout)["hosts"][0]["unmanaged"]
    assert {f"function.{pg.dbname}.public.my_len(text)", f"function.{pg.dbname}.public.my_hash(text)"} <= set(
        unmanaged)
    assert f"function.{pg.dbname}.public.plus_one(integer)" not in unmanaged


LEFT_OUT_WITH_SQL = """
CREATE FUNCTION public.my_len(text) RETURNS int LANGUAGE internal IMMUTABLE STRICT AS 'textlen';
CREATE FUNCTION public.no_repeat() RETURNS trigger LANGUAGE internal AS 'suppress_redundant_updates_trigger';
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE ROLE fn_caller;
REVOKE EXECUTE ON FUNCTION my_len(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION my_len(text), touch() TO fn_caller;
CREATE TABLE public.words (w text);
CREATE VIEW public.lengths AS SELECT w, my_len(w) AS n FROM words;
CREATE VIEW public.long_words AS SELECT w FROM lengths WHERE n > 5;
CREATE VIEW public.plain_words AS SELECT w FROM words;
CREATE AGGREGATE public.total(int) (sfunc = int4pl, stype = int);
CREATE VIEW public.word_count AS SELECT total(1) FROM words;
CREATE MATERIALIZED VIEW public.length_counts AS SELECT my_len(w) AS n, count(*) FROM words GROUP BY 1;
CREATE INDEX length_counts_n ON length_counts (n);
GRANT SELECT ON words, lengths, plain_words TO fn_caller;
CREATE TRIGGER words_no_repeat BEFORE UPDATE ON words FOR EACH ROW EXECUTE FUNCTION no_repeat();
CREATE TRIGGER words_touch BEFORE INSERT ON words FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TRIGGER words_when BEFORE INSERT ON words FOR EACH ROW WHEN (my_len(NEW.w) > 3) EXECUTE FUNCTION touch();
CREATE FOREIGN DATA WRAPPER nowhere;
CREATE SERVER far FOREIGN DATA WRAPPER nowhere;
CREATE FOREIGN TABLE public.far_words (w text) SERVER far;
GRANT SELECT ON far_words TO fn_caller;
CREATE VIEW public.far_view AS SELECT w FROM far_words;
CREATE TRIGGER far_touch BEFORE INSERT ON far_words FOR EACH ROW EXECUTE FUNCTION touch();
REVOKE EXECUTE ON FUNCTION total(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION total(int) TO fn_caller;
CREATE TYPE public.floatrange AS RANGE (subtype = float8);
REVOKE USAGE ON TYPE floatrange FROM PUBLIC;
GRANT USAGE ON TYPE floatmultirange TO fn_caller;
CREATE FUNCTION public.with_default(w text, n int DEFAULT my_len('abc')) RETURNS int LANGUAGE sql AS 'SELECT n';
GRANT EXECUTE ON FUNCTION with_default(text, int) TO fn_caller;
CREATE FUNCTION public.twice(n int DEFAULT with_default('x')) RETURNS int LANGUAGE sql AS 'SELECT 2 * n';
CREATE VIEW public.via_default AS SELECT with_default(w) FROM words;
CREATE FUNCTION public.on_range(r floatrange[]) RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION public.atomic_len(w text) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT length(w); END;
"""


def test_what_names_a_left_out_object_is_left_out_with_it_and_the_export_applies_to_an_empty_database(tmp_path, pg,
                                                                                                       conn):
    """A grant on a function in internal, a view calling it (and a view reading that one), a
    trigger calling it (or calling it in its WHEN), a view calling an aggregate, a foreign
    table's grant, view and trigger, grants on an aggregate and on a range type (and its
    multirange), a function whose argument default calls a left-out function (and one whose default
    calls that one), or whose argument is of a left-out range type: written, each would make the
    file fail on a server without the object. Each is left out and named with why; so is a
    function with a BEGIN ATOMIC body, which a playbook cannot hold."""
    conn.execute(LEFT_OUT_WITH_SQL)
    stderr, text, header = _export_pruned(tmp_path, pg)
    for said in (stderr, header):
        lines = {line.lstrip("# ") for line in said.splitlines()}
        for left_out in (
                "grant EXECUTE on function public.my_len(text) to fn_caller: the function is left out",
                "grant no privileges on function public.my_len(text) to PUBLIC: the function is left out",
                "view public.lengths: it calls function public.my_len(text), which is left out",
                "grant SELECT on view public.lengths to fn_caller: the view is left out",
                "view public.long_words: it reads view public.lengths, which is left out",
                "view public.word_count: it calls aggregate public.total(integer), which is left out",
                "materialized view public.length_counts: it calls function public.my_len(text), which is left out",
                "materialized view index length_counts_n on public.length_counts: "
                "materialized view public.length_counts is left out",
                "trigger words_no_repeat on public.words: it calls function public.no_repeat(), which is left out",
                "trigger words_when on public.words: it calls function public.my_len(text), which is left out",
                "grant SELECT on foreign table public.far_words to fn_caller: the foreign table is left out",
                "view public.far_view: it reads foreign table public.far_words, which is left out",
                "trigger far_touch on public.far_words: foreign table public.far_words is left out",
                "grant EXECUTE on aggregate public.total(integer) to fn_caller: the aggregate is left out",
                "grant no privileges on aggregate public.total(integer) to PUBLIC: the aggregate is left out",
                "grant no privileges on range type public.floatrange to PUBLIC: the type is left out",
                "grant USAGE on multirange type public.floatmultirange to fn_caller: "
                "range type public.floatrange is left out",
                "function public.with_default(w text, n integer): it calls function public.my_len(text), "
                "which is left out",
                "grant EXECUTE on function public.with_default(w text, n integer) to fn_caller: "
                "the function is left out",
                "function public.twice(n integer): it calls function public.with_default(w text, n integer), "
                "which is left out",
                "view public.via_default: it calls function public.with_default(w text, n integer), "
                "which is left out",
                "function public.on_range(r floatrange[]): it uses range type public.floatrange, which is left out",
                "function public.atomic_len(w text) with a SQL-standard body (BEGIN ATOMIC), "
                "which a playbook cannot hold"):
            assert f"database {pg.dbname}: {left_out}" in lines, said
        assert "plain_words" not in said and "words_touch" not in said and "touch()" not in said
    playbook = yaml.safe_load(text)
    [database] = playbook[0]["databases"]
    assert [v["name"] for v in database["views"]] == ["plain_words"]
    assert "materialized_views" not in database
    assert [t["name"] for t in database["triggers"]] == ["words_touch"]
    [public] = [s for s in database["schemas"] if s["name"] == "public"]
    assert not [g for g in public.get("grants", []) if "functions" in g]
    [touch] = database["functions"]  # its grant on it: a schema's grant names a function that exists already
    assert touch["grants"] == [{"to": "fn_caller", "privileges": ["EXECUTE"]}]
    assert erpprov(tmp_path, "plan", "--detailed-exitcode").returncode == 0  # nothing dropped on the source

    database["name"] = pg.dbname + "_empty"  # a new database: nothing of the source there
    (tmp_path / PLAYBOOK).write_text(yaml.safe_dump(playbook, sort_keys=False))
    applied = erpprov(tmp_path, "apply")
    assert applied.returncode == 0, applied.stderr
    assert_converged(tmp_path)


def test_base_and_shell_types_and_window_functions_made_by_hand_are_seen_left_out_and_never_pruned(tmp_path, pg,
                                                                                                   conn):
    """A base type (its input and output functions in internal) and a shell type were read nowhere,
    its grant neither; a window function in a schema that prunes stopped the plan with a KeyError.
    A domain and a composite type over a left-out type are left out with it, and the columns of the
    file's tables that use it, or call a function left out with it, are named on their lines."""
    conn.execute("CREATE FUNCTION public.my_rn() RETURNS bigint LANGUAGE internal WINDOW AS 'window_row_number';"
                 "CREATE TYPE public.shelly; CREATE TYPE public.mytype;"
                 "CREATE FUNCTION public.mytype_in(cstring) RETURNS mytype LANGUAGE internal IMMUTABLE STRICT"
                 "  AS 'int4in';"
                 "CREATE FUNCTION public.mytype_out(mytype) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT"
                 "  AS 'int4out';"
                 "CREATE TYPE public.mytype (INPUT = mytype_in, OUTPUT = mytype_out, LIKE = int4);"
                 "CREATE ROLE type_user; GRANT USAGE ON TYPE mytype TO type_user;"
                 "CREATE DOMAIN public.my_dom AS mytype; CREATE TYPE public.my_pair AS (a mytype);"
                 "CREATE FUNCTION public.one_of(v mytype) RETURNS int LANGUAGE sql AS 'SELECT 1';"
                 "CREATE TABLE public.uses_type (v mytype, n int DEFAULT one_of(NULL))")
    stderr, text, header = _export_pruned(tmp_path, pg)
    for said in (stderr, header):
        lines = {line.lstrip("# ") for line in said.splitlines()}
        for left_out in ("base type public.mytype; create it before applying the file elsewhere: column "
                         "public.uses_type.v use it", "shell type public.shelly",
                         "domain type public.my_dom: it uses base type public.mytype, which is left out",
                         "composite type public.my_pair: it uses base type public.mytype, which is left out",
                         "function public.one_of(v mytype): it uses base type public.mytype, which is left out; "
                         "create it before applying the file elsewhere: the default of column public.uses_type.n "
                         "call it",
                         "grant USAGE on base type public.mytype to type_user: the type is left out",
                         "function public.my_rn() in language internal (a playbook cannot declare it: an extension "
                         "that provides it can)"):
            assert f"database {pg.dbname}: {left_out}" in lines, said
    assert "_mytype" not in stderr  # its array type is part of it
    [database] = yaml.safe_load(text)[0]["databases"]
    assert "types" not in database and "functions" not in database
    assert [t["name"] for t in database["tables"]] == ["uses_type"]
    plan = erpprov(tmp_path, "plan", "--detailed-exitcode", "--format", "json")
    assert plan.returncode == 0, plan  # the database prunes: nothing of this dropped
    unmanaged = set(json.loads(plan.stdout)["hosts"][0]["unmanaged"])
    assert {f"type.{pg.dbname}.public.mytype", f"type.{pg.dbname}.public.shelly",
            f"function.{pg.dbname}.public.my_rn()", f"type.{pg.dbname}.public.my_dom",
            f"function.{pg.dbname}.public.one_of(v mytype)"} <= unmanaged
