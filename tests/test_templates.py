"""A play's `templates:`: a masked unified diff in the plan, atomic private writes only when the
content or mode differs, and clear errors."""

from __future__ import annotations

import os

import pytest

from erpprov.errors import ErpprovError
from erpprov.plan.build import plan_target
from tests.helpers import apply_all, load_targets

PLAY = """
- name: app
  vars: {{app_password: "{password}"}}
  roles: [{{name: tpl_app, login: true, password: "{{{{ app_password }}}}"}}]
  templates:
    - {{src: {src}, dest: out/app.env, mode: "0640"}}
"""


def _targets(tmp_path, pg, password="s3cret-pw", src="app.env.j2"):  # type: ignore[no-untyped-def]
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "app.env.j2").write_text(
        "DATABASE_URL=postgresql://tpl_app:{{ app_password | urlquote }}@{{ pg_host }}:{{ pg_port }}/app\n"
        "POSTGRES_NAME=postgres\n")
    return load_targets(tmp_path, pg, PLAY.format(password=password, src=src))


def test_plan_shows_a_masked_diff_and_apply_writes_only_on_change(tmp_path, pg):
    targets = _targets(tmp_path, pg)
    [action] = [a for a in plan_target(targets[0]).actions if a.kind == "file"]
    assert action.address == "file.out/app.env" and action.op.value == "create"
    assert "+DATABASE_URL=postgresql://tpl_app:(sensitive)@" in action.note
    assert "+POSTGRES_NAME=postgres" in action.note  # "postgres" is no secret inside another word
    assert "s3cret-pw" not in action.note
    apply_all(targets)
    out = tmp_path / "out" / "app.env"
    assert oct(out.stat().st_mode & 0o777) == "0o640"
    assert "s3cret-pw@" in out.read_text()
    written = out.stat().st_mtime_ns
    assert apply_all(targets) == []  # same content and mode: not rewritten
    assert out.stat().st_mtime_ns == written

    changed = _targets(tmp_path, pg, password="new pw/with:chars")
    [update] = [a for a in plan_target(changed[0]).actions if a.kind == "file"]
    assert update.op.value == "update"
    assert "-DATABASE_URL=(sensitive)" in update.note  # the old password is no longer known: the value goes
    assert "+DATABASE_URL=postgresql://tpl_app:(sensitive)@" in update.note
    for secret in ("s3cret-pw", "new pw", "new%20pw"):
        assert secret not in update.note
    apply_all(changed)
    assert "new%20pw%2Fwith%3Achars@" in out.read_text()
    assert not [p for p in os.listdir(out.parent) if p != "app.env"]  # no temporary files left


def test_a_mode_change_alone_is_planned(tmp_path, pg):
    targets = _targets(tmp_path, pg)
    apply_all(targets)
    os.chmod(tmp_path / "out" / "app.env", 0o644)
    [action] = [a for a in plan_target(targets[0]).actions if a.kind == "file"]
    assert (action.before, action.after["mode"], action.note) == ({"mode": "0644"}, "0640", "mode only")


def test_missing_template_and_undefined_variable_are_clear_errors(tmp_path, pg):
    with pytest.raises(ErpprovError, match=r"template not found: .*nope\.j2"):
        plan_target(_targets(tmp_path, pg, src="nope.j2")[0])
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "bad.j2").write_text("X={{ not_defined }}\n")
    with pytest.raises(ErpprovError, match=r"templates/bad\.j2: undefined variable: 'not_defined'"):
        plan_target(load_targets(tmp_path, pg, PLAY.format(password="x", src="bad.j2"))[0])


def test_an_error_inside_a_template_file_names_the_file(tmp_path, pg):
    """An expression that fails at render time (1/0) is an error message, not a traceback."""
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "div.j2").write_text("X={{ 1/0 }}\n")
    with pytest.raises(ErpprovError, match=r"templates/div\.j2: template failed: ZeroDivisionError"):
        plan_target(load_targets(tmp_path, pg, PLAY.format(password="x", src="div.j2"))[0])
    (tmp_path / "templates" / "syntax.j2").write_text("A=1\nX={{ 1 +  }}\n")
    with pytest.raises(ErpprovError, match=r"templates/syntax\.j2:2: template syntax error: "):
        plan_target(load_targets(tmp_path, pg, PLAY.format(password="x", src="syntax.j2"))[0])


RUNAWAY = {
    "nested_loops": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "prebuilt_lists": "{% set r = range(100000) | list %}{% for a in r %}{% for b in r %}{% endfor %}{% endfor %}",
    "macro_in_a_loop": "{% macro f() %}{% for b in range(100000) %}{% endfor %}{% endmacro %}"
                       "{% for a in range(100000) %}{{ f() }}{% endfor %}",
}


@pytest.mark.parametrize("name", sorted(RUNAWAY))
def test_a_runaway_template_file_is_stopped_in_a_multi_host_run(tmp_path, pg, name):
    """Hosts are planned in a thread pool, where no signal can interrupt a render: the time bound
    must hold there too, for every host."""
    import yaml

    from tests.helpers import erpprov, server_vars, write_project

    hosts = {h: {**server_vars(pg, password_from_env=False), "out": h} for h in ("alpha", "beta")}
    write_project(tmp_path, yaml.safe_dump([{"name": "runaway", "hosts": "dev", "templates": [
        {"src": "loop.j2", "dest": "out/{{ out }}.txt"}]}]),
        inventory=yaml.safe_dump({"all": {"children": {"dev": {"hosts": hosts}}}}))
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "loop.j2").write_text(RUNAWAY[name] + "\n")
    run = erpprov(tmp_path, "plan", timeout=120)  # a hang is a timeout here
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    for host in ("alpha", "beta"):
        assert f"[{host}]" in run.stderr and "templates/loop.j2: template still rendering after" in run.stderr
