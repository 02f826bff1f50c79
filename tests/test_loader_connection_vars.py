"""Connection variables: their documented defaults are template variables, their rendering errors
are messages (never tracebacks), and a role's password is rendered only when a plan needs it."""

from __future__ import annotations

import pytest

from erpprov.errors import ErpprovError
from erpprov.load.project import load_project
from erpprov.plan.build import plan_target
from tests.helpers import PLAYBOOK, apply_all, erpprov, load_targets, write_project

PLAY = """
- name: app
  hosts: all
  roles: [{name: "{{ pg_user }}_app", comment: "{{ pg_host }}:{{ pg_port }}/{{ pg_database }} {{ driver }}"}]
"""


def test_documented_connection_defaults_are_template_variables(tmp_path):
    inventory = "all:\n  hosts:\n    db1: {}\n"
    project = load_project(write_project(tmp_path, PLAY, inventory=inventory) / PLAYBOOK, tmp_path / "inventory.yaml",
                           environ={})
    [role] = project.targets[0].play.roles
    assert (role.name, role.comment) == ("postgres_app", "127.0.0.1:5432/postgres auto")


@pytest.mark.parametrize("value, words", [
    ("{{ lookup('file', '/nonexistent/pg_password') }}", "lookup('file', '/nonexistent/pg_password')"),
    ("s3cr3t-{{ not_defined }}", "undefined variable"),
])
def test_a_connection_variable_that_does_not_render_is_an_error_message(tmp_path, value, words):
    inventory = f'all:\n  hosts:\n    db1: {{pg_password: "{value}"}}\n'
    path = write_project(tmp_path, "- {name: app, hosts: all}\n", inventory=inventory) / PLAYBOOK
    with pytest.raises(ErpprovError, match="pg_password") as caught:
        load_project(path, tmp_path / "inventory.yaml", environ={})
    assert words in caught.value.message


EXPORTED = """
- name: adopted
  hosts: all
  roles:
    - {name: lazy_app, login: true, password: "{{ env.LAZY_APP_PASSWORD }}", update_password: on_create}
"""


def test_a_password_is_rendered_only_when_the_plan_needs_it(tmp_path, pg):
    """An exported playbook plans while its password variables are unset, as long as the roles
    exist and keep their passwords (on_create); creating one needs its password."""
    with pg.connect("postgres") as conn:
        conn.execute("CREATE ROLE lazy_app LOGIN")
    [target] = load_targets(tmp_path, pg, EXPORTED)
    assert [a.address for a in plan_target(target).actions] == []
    run = erpprov(tmp_path, "plan", "-o", "plan.json")
    assert run.returncode == 0, run.stderr
    with pg.connect("postgres") as conn:
        conn.execute("DROP ROLE lazy_app")
    with pytest.raises(ErpprovError, match="LAZY_APP_PASSWORD") as caught:
        plan_target(target)
    assert caught.value.location is not None and caught.value.location.line == 5
    with pytest.raises(ErpprovError, match="LAZY_APP_PASSWORD"):
        apply_all([target])
