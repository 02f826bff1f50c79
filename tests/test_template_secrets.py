"""Secrets never print in a plan, whatever a template does with them: passwords, `env` (and so
`.env`), lookup('file') and variables named like secrets, in any form a filter gives them, on
both sides of a file's diff, and in any playbook string rendered from them; a file holding a
secret that others may read is a plan warning."""

from __future__ import annotations

import contextlib
import html
import json
import textwrap
from urllib.parse import quote, quote_plus

from erpprov.errors import ErpprovError
from erpprov.plan.build import plan_target
from tests.helpers import erpprov, load_targets

OLD_PASSWORD = "Old\"Pa'ss/w0rd"
NEW_PASSWORD = "New\"Pa'ss/w1rd"
TOKEN = "tok-XYZ123abc"
FILE_SECRET = "filesecret-QQ9"

PLAY = """
- name: app
  vars:
    app_password: "{password}"
    secret_path: "{secret_path}"
    dsn_note: "dsn {{{{ lookup('file', secret_path) }}}}"
  roles:
    - {{name: tpl_secret_app, login: true, password: "{{{{ app_password }}}}", comment: "{{{{ app_password }}}}"}}
    - {{name: tpl_secret_other, comment: "token {{{{ env.API_TOKEN | upper }}}}"}}
    - {{name: tpl_secret_third, comment: "{{{{ dsn_note }}}}"}}
  templates:
    - {{src: app.j2, dest: app.env, mode: "{mode}"}}
"""
TEMPLATE = textwrap.dedent("""\
    PLAIN=hello
    JSON={{ app_password | tojson }}
    QUOTED="{{ app_password | replace('"', '\\\\"') }}"
    UPPER={{ app_password | upper }}
    URL=postgresql://app:{{ app_password | urlencode }}@db/app
    QUOTE={{ app_password | urlquote }}
    REVERSED={{ app_password | reverse | join }}
    HTML={{ app_password | e }}
    TOKEN={{ env.API_TOKEN }}
    LOWER_TOKEN={{ env.API_TOKEN | lower }}
    FILE={{ lookup('file', secret_path) }}
    {{ app_password }}
    """)


def _forms(secret: str) -> set[str]:
    forms = {secret, json.dumps(secret)[1:-1], secret.replace('"', '\\"'), quote(secret), quote(secret, safe=""),
             quote_plus(secret), html.escape(secret), secret[::-1]}
    return forms | {f.upper() for f in forms} | {f.lower() for f in forms}


def _project(tmp_path, pg, password, mode="0600"):  # type: ignore[no-untyped-def]
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "app.j2").write_text(TEMPLATE)
    (tmp_path / ".env").write_text(f"API_TOKEN={TOKEN}\n")
    secret_file = tmp_path / "pg_secret"
    secret_file.write_text(FILE_SECRET + "\n")
    playbook = PLAY.format(password=password.replace('"', '\\"'), secret_path=secret_file, mode=mode)
    return load_targets(tmp_path, pg, playbook)


def _outputs(tmp_path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    runs = {"text": ("--sql",), "markdown": ("--format", "markdown"), "json": ("--format", "json"),
            "saved": ("-o", "saved.json")}
    outputs = {}
    for name, args in runs.items():
        run = erpprov(tmp_path, "plan", *args)
        assert run.returncode == 0, run.stderr
        outputs[name] = run.stdout + run.stderr
    outputs["saved"] += (tmp_path / "saved.json").read_text()
    return outputs


def test_secrets_never_print_in_any_form_through_the_cli(tmp_path, pg):
    _project(tmp_path, pg, OLD_PASSWORD, mode="0644")
    outputs = _outputs(tmp_path)
    for name, output in outputs.items():
        for secret in (OLD_PASSWORD, TOKEN, FILE_SECRET):
            leaked = [form for form in _forms(secret) if form in output]
            assert not leaked, f"{name} shows {leaked}:\n{output}"
    assert "+PLAIN=hello" in outputs["text"] and "+URL=postgresql://app:(sensitive)@db/app" in outputs["text"]
    assert "file.app.env holds secrets and mode 0644 lets others read it" in outputs["text"]


def test_a_password_rotation_never_shows_the_old_password(tmp_path, pg):
    _project(tmp_path, pg, OLD_PASSWORD)
    run = erpprov(tmp_path, "apply")
    assert run.returncode == 0, run.stderr
    assert OLD_PASSWORD in (tmp_path / "app.env").read_text()
    [target] = _project(tmp_path, pg, NEW_PASSWORD)
    [action] = [a for a in plan_target(target).actions if a.kind == "file"]
    assert "-JSON=(sensitive)" in action.note and '+JSON="(sensitive)"' in action.note
    assert " PLAIN=hello" in action.note
    for name, output in _outputs(tmp_path).items():
        for secret in (OLD_PASSWORD, NEW_PASSWORD):
            leaked = [form for form in _forms(secret) if form in output]
            assert not leaked, f"{name} shows {leaked}:\n{output}"


def test_errors_that_quote_a_value_rendered_from_a_secret_hide_it(tmp_path, pg):
    """An error message quotes the value it is about: a type the server rejects (folded to lower
    case by the server) or one the loader refuses. Rendered from a secret, it reads (sensitive)."""
    token = "Sup3rToken9q"
    for column_type, command in ((token, "plan"), (token, "apply"), (f"{token};", "validate")):
        play = textwrap.dedent(f"""
            - name: p
              hosts: all
              databases:
                - name: {pg.dbname}
                  tables:
                    - name: t
                      columns: [{{name: c, type: "{{{{ env.API_TOKEN }}}}"}}]
        """)
        (tmp_path / ".env").write_text(f"API_TOKEN={column_type}\n")
        with contextlib.suppress(ErpprovError):  # it writes the project; the load itself may refuse the type
            load_targets(tmp_path, pg, play)
        run = erpprov(tmp_path, command)
        assert run.returncode == 1 and run.stderr.startswith("error: "), str(run)
        assert "(sensitive)" in run.stderr and token.lower() not in run.stderr.lower(), run.stderr


def test_apply_warns_of_a_readable_file_holding_secrets_as_plan_does(tmp_path, pg):
    _project(tmp_path, pg, OLD_PASSWORD, mode="0644")
    run = erpprov(tmp_path, "apply")
    assert run.returncode == 0, run.stderr
    assert "file.app.env holds secrets and mode 0644 lets others read it" in run.stdout, run.stdout
