"""Ctrl-C (or SIGTERM) during plan and apply: the work stops at its next step, what the server runs
for it is cancelled and rolled back, and the command ends with status 130 (143); a second signal
quits at once. Before, the signal waited for the apply to finish, committed and all, then said
"interrupted"."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time

import pytest
import yaml

from tests.helpers import (
    erpprov,
    finish,
    pg_env,
    server_vars,
    silent_server,
    start_erpprov,
    wait_in_transaction,
    write_project,
)

SLOW = """
- name: slow
  hosts: dev
  databases:
    - name: {db}
      tables:
        - {{name: t, columns: [{{name: id, type: integer, primary_key: true}}]}}
      scripts:
        - {{name: slow, run: always, sql: "SELECT pg_sleep(600)"}}
"""


@pytest.mark.parametrize(("signum", "word"), [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")],
                         ids=["ctrl-c", "sigterm"])
def test_a_signal_rolls_back_the_apply_in_progress(tmp_path, pg, signum, word):
    """The script sleeps far longer than the test waits: only a cancelled statement ends the run."""
    project = write_project(tmp_path, SLOW.format(db=pg.dbname), server_vars(pg))
    proc = start_erpprov(project, "apply", env=pg_env(pg))
    assert wait_in_transaction(pg.connect, [pg.dbname], proc) == pg.dbname, "the apply never began its transaction"
    proc.send_signal(signum)
    run = finish(proc, timeout=60)
    assert run.returncode == 128 + signum, str(run)
    assert word in run.stderr and "rolled back" in run.stderr, str(run)
    assert "Traceback" not in run.stderr
    with pg.connect() as conn:
        assert conn.execute("SELECT to_regclass('public.t')").fetchone() == (None,), "the table was committed"
        # nothing of erpprov's still runs on the server
        assert conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600)%' "
                            "AND pid <> pg_backend_pid()").fetchone() == (0,)
    plan = erpprov(project, "plan", "--detailed-exitcode", env=pg_env(pg))
    assert plan.returncode == 2 and "table" in plan.stdout, str(plan)  # still to do, as nothing happened


def test_what_the_interrupted_apply_created_is_dropped_again(tmp_path, pg):
    """The database, then the role that owns it: both committed before the script was interrupted."""
    new_db, new_role = f"{pg.dbname}_new", f"{pg.dbname}_app"
    play = yaml.safe_load(SLOW.format(db=new_db))
    play[0]["roles"], play[0]["databases"][0]["owner"] = [{"name": new_role}], new_role
    project = write_project(tmp_path, yaml.safe_dump(play), server_vars(pg))
    proc = start_erpprov(project, "apply", env=pg_env(pg))
    assert wait_in_transaction(pg.connect, [new_db], proc) == new_db, "the apply never began its transaction"
    proc.send_signal(signal.SIGINT)
    run = finish(proc, timeout=60)
    assert run.returncode == 130, str(run)
    assert f"undone: [localhost] database {new_db}\nundone: [localhost] role {new_role}\n" in run.stdout, str(run)
    assert "changed=0 " in run.stdout, str(run)
    with pg.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (new_db,)).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (new_role,)).fetchone() == (0,)


def test_a_second_ctrl_c_quits_at_once(tmp_path):
    """A connection attempt cannot be cancelled: the first Ctrl-C would wait for it to time out
    (a minute here, longer than the test waits); the second quits without waiting."""
    with silent_server() as (silent, host):
        project = write_project(tmp_path, "- name: p\n  hosts: dev\n  roles: [{name: a}]\n",
                                {**host, "pg_connect_timeout": 120})
        proc = start_erpprov(project, "plan")
        waiting, _ = silent.accept()  # the plan is connecting
        with waiting:
            proc.send_signal(signal.SIGINT)
            assert _said(proc, "Ctrl-C again quits at once"), "the first Ctrl-C was not taken"
            proc.send_signal(signal.SIGINT)  # after the first was handled: two at once count as one
            run = finish(proc, timeout=30)
    assert run.returncode == 130, str(run)
    assert "quitting at once" in run.stderr, str(run)


def _said(proc: subprocess.Popen[str], words: str, within: float = 30) -> bool:
    """Whether ``proc`` wrote ``words`` on stderr within ``within`` seconds (read from the pipe
    itself: a text stream's buffer would hide what select() no longer sees)."""
    assert proc.stderr is not None
    fd, seen = proc.stderr.fileno(), b""
    deadline = time.monotonic() + within
    while words.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        seen += chunk
    return words.encode() in seen
