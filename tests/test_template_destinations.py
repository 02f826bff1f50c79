"""Where a play's `templates:` may write: inside the project unless the play says otherwise, and
never showing what a file held before erpprov wrote it; every destination is checked by the plan,
before apply changes anything."""

from __future__ import annotations

import os

import pytest

from erpprov.errors import ErpprovError
from erpprov.plan.build import plan_target
from tests.helpers import apply_all, load_targets

PLAY = """
- name: app
  roles: [{{name: tpl_dest_app}}]
  templates:
    - {{src: app.j2, dest: "{dest}"{extra}}}
"""
VICTIM = "root:VICTIM-HASH:19000:0:99999:7:::\n"


def _targets(tmp_path, pg, dest, extra=""):  # type: ignore[no-untyped-def]
    (tmp_path / "project" / "templates").mkdir(parents=True, exist_ok=True)
    (tmp_path / "project" / "templates" / "app.j2").write_text("GREETING=hello\n")
    return load_targets(tmp_path / "project", pg, PLAY.format(dest=dest, extra=extra))


def _role_exists(pg) -> bool:  # type: ignore[no-untyped-def]
    with pg.connect("postgres") as conn:
        return conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'tpl_dest_app'").fetchone()[0] == 1


@pytest.mark.parametrize("how", ["parent", "absolute", "symlink"])
def test_a_destination_outside_the_project_is_refused_before_anything_changes(tmp_path, pg, how):
    victim = tmp_path / "victim" / "shadow"
    victim.parent.mkdir()
    victim.write_text(VICTIM)
    dest = {"parent": "../victim/shadow", "absolute": str(victim), "symlink": "linked/shadow"}[how]
    if how == "symlink":
        (tmp_path / "project").mkdir()
        os.symlink(victim.parent, tmp_path / "project" / "linked")
    [target] = _targets(tmp_path, pg, dest)
    for attempt in (lambda: plan_target(target), lambda: apply_all([target])):
        with pytest.raises(ErpprovError, match="outside the project") as caught:
            attempt()
        assert "outside_project: true" in (caught.value.hint or "")
        assert "VICTIM" not in str(caught.value)
    assert victim.read_text() == VICTIM
    assert not _role_exists(pg)  # refused before the role was created


def test_outside_the_project_when_the_play_says_so_without_showing_the_old_content(tmp_path, pg):
    victim = tmp_path / "victim" / "app.env"
    victim.parent.mkdir()
    victim.write_text(VICTIM + "GREETING=hello\n")
    [target] = _targets(tmp_path, pg, "../victim/app.env", extra=", outside_project: true")
    [action] = [a for a in plan_target(target).actions if a.kind == "file"]
    assert "VICTIM" not in action.note and "root" not in action.note
    assert " GREETING=hello" in action.note  # what erpprov writes itself is shown
    apply_all([target])
    assert victim.read_text() == "GREETING=hello\n"


def test_a_destination_that_is_not_utf8_is_planned_and_checked_before_apply_changes_anything(tmp_path, pg):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "out.env").write_bytes(b"GREETING=caf\xe9\n")
    [target] = _targets(tmp_path, pg, "out.env")
    [action] = [a for a in plan_target(target).actions if a.kind == "file"]
    assert action.op.value == "update" and "+GREETING=hello" in action.note
    (tmp_path / "project" / "templates" / "app.j2").write_text("X={{ undefined_here }}\n")
    with pytest.raises(ErpprovError, match="undefined_here"):
        apply_all([target])
    assert not _role_exists(pg)  # the file was checked before the role was created
