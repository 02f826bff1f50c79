"""erpprov.postgres.apply: erpprov's plan (check mode) and apply (a normal run) as an Ansible task."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: apply
short_description: Reconcile a PostgreSQL server with an erpprov desired state
description:
  - Plans (check mode) or applies (a normal run) an erpprov desired state on one server, with
    erpprov's library on the managed node. Nothing is shelled out to the erpprov CLI.
  - The task is C(changed) when the plan is not empty. In diff mode the plan is returned as a
    before/after diff of each action, and as erpprov's plan text.
  - Hazards (drops, rewrites, revokes...) that I(allow_hazards) does not allow fail the task before
    anything changes, with the message of C(erpprov apply).
  - Passwords (I(pg_password), and every value under a key named like a secret in I(state) and
    I(vars)) never appear in the result, the diff or C(-vvv) output.
extends_documentation_fragment:
  - erpprov.postgres.connection
requirements:
  - Python 3.11 or newer on the managed node, with erpprov (C(pip install erpprov)).
options:
  playbook:
    description:
      - An erpprov playbook on the managed node. Every play of it applies to this server, whatever
        its C(hosts) says (Ansible chose the hosts). Mutually exclusive with I(state).
    type: path
  state:
    description:
      - The desired state inline, the keys of one erpprov play (C(roles), C(databases), C(container),
        C(prune_roles), C(templates)); see docs/playbook.md.
    type: dict
  vars:
    description: Variables for erpprov's own templates in the playbook or state (like C(erpprov -e)).
    type: dict
  host_name:
    description: The name this server is shown under in the plan (use C({{ inventory_hostname }})).
    type: str
    default: localhost
  project_dir:
    description: Where the C(templates) sources of the play are found (default the playbook's project, or the
      working directory for I(state)).
    type: path
  allow_hazards:
    description: Hazard kinds allowed to go ahead (C(deletes_data), C(rewrites_table)...), or C(all).
    type: list
    elements: str
    default: []
  prune:
    description: Make every database of the state prune (drop the live objects the state does not declare).
    type: bool
    default: false
  lock_wait:
    description: Seconds to wait for another apply of the same server to finish.
    type: float
    default: 30
notes:
  - Supports check mode (it is erpprov plan) and diff mode.
"""

EXAMPLES = r"""
- name: The team's databases
  erpprov.postgres.apply:
    host_name: "{{ inventory_hostname }}"
    pg_host: "{{ ansible_host | default('127.0.0.1') }}"
    pg_password: "{{ vault_pg_password }}"
    state:
      roles:
        - {name: app, login: true, password: "{{ vault_app_password }}"}
      databases:
        - {name: erp, owner: app}
  register: erp
"""

RETURN = r"""
plan:
  description: The plan as erpprov's JSON plan document (C(erpprov plan --format json)); after a normal
    run, the actions that ran.
  type: dict
  returned: always
actions:
  description: Addresses and operations of the plan's actions, in the order they run.
  type: list
  returned: always
hazards:
  description: The hazard kinds of the plan's actions.
  type: list
  returned: always
recap:
  description: Counts, as erpprov's RECAP and plan summary (ok, changed, add, change, destroy); ok (the
    declared objects that were already right) is counted by a normal run only.
  type: dict
  returned: always
"""

import json  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.erpprov.postgres.plugins.module_utils.erpprov import (  # noqa: E402
    CONNECTION_OPTIONS,
    connection_settings,
    desired_plays,
    fail_without_erpprov,
    hide,
    hide_declared_secrets,
)

try:
    from erpprov.apply.hazards import HazardsRefused
    from erpprov.apply.host import ApplyOptions, ApplyReport, HostFailed, apply_target
    from erpprov.core.actions import Hazard, HostPlan
    from erpprov.core.secrets import is_secret_name
    from erpprov.core.target import Target
    from erpprov.errors import ErpprovError
    from erpprov.fanout import for_each_target
    from erpprov.load.project import Project, load_for_host
    from erpprov.load.taint import known_secrets
    from erpprov.plan import planfile, render
    from erpprov.plan.build import plan_target

    MISSING: ImportError | None = None
except ImportError as exc:  # the task fails with how to install it, not with a traceback
    MISSING = exc


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "playbook": {"type": "path"},
            "state": {"type": "dict"},
            "vars": {"type": "dict"},
            "host_name": {"type": "str", "default": "localhost"},
            "project_dir": {"type": "path"},
            "allow_hazards": {"type": "list", "elements": "str", "default": []},
            "prune": {"type": "bool", "default": False},
            "lock_wait": {"type": "float", "default": 30.0},
            **CONNECTION_OPTIONS,
        },
        mutually_exclusive=[("playbook", "state")],
        required_one_of=[("playbook", "state")],
        supports_check_mode=True,
    )
    if MISSING is not None:
        fail_without_erpprov(module, MISSING)
    run(module)


def run(module: AnsibleModule) -> None:
    params = module.params
    hide_declared_secrets(module, is_secret_name)
    allowed = allowed_hazards(module, params["allow_hazards"])
    plays = desired_plays(params)
    try:
        project = load_for_host(plays, connection_settings(params), host=params["host_name"],
                                extra_vars=params["vars"],
                                project_dir=Path(params["project_dir"]) if params["project_dir"] else None)
    except ErpprovError as exc:
        module.fail_json(msg=str(exc))
    if params["prune"]:
        project = Project(inventory=project.inventory, playbook=project.playbook,
                          targets=[pruned(t) for t in project.targets])
    for target in project.targets:
        hide(module, known_secrets(target))

    options = ApplyOptions(allow_hazards=allowed, lock_wait=params["lock_wait"])

    def work(target: Target) -> HostPlan | ApplyReport:
        if module.check_mode:
            return plan_target(target, fingerprinted=False)
        return apply_target(target, options, lambda kind, address: None, lambda text: None)

    # One host: its plays run in order and the first failure stops the rest, as in `erpprov apply`.
    outcomes = for_each_target(project, work, forks=1)
    plans, ok = [], 0
    for outcome in outcomes:
        value = outcome.value if outcome.value is not None else getattr(outcome.error, "report", None)
        if isinstance(value, ApplyReport):  # what ran, in the plan's vocabulary
            ok += len(value.ok)
            value = HostPlan(host=value.host, driver=value.driver, actions=value.changed, warnings=value.warnings)
        if value is not None:
            plans.append(value)
    result = results(plans, ok)
    for plan in plans:
        for warning in plan.warnings:
            module.warn(warning)
    if module._diff and result["changed"]:  # a no-op shows no diff, as Ansible's own modules do
        result["diff"] = diff(plans)
    failed = next((o.error for o in outcomes if o.error), None)
    if failed is not None:
        module.fail_json(msg=worded(failed), **result)
    module.exit_json(**result)


def allowed_hazards(module: AnsibleModule, names: list[str]) -> frozenset[Hazard]:
    if "all" in names:
        return frozenset(Hazard)
    try:
        return frozenset(Hazard(name) for name in names)
    except ValueError as exc:
        module.fail_json(msg=f"allow_hazards: {exc}; known: all, {', '.join(h.value for h in Hazard)}")
        raise


def pruned(target: Target) -> Target:
    """``target`` with every database pruning what it does not declare (the module's prune option)."""
    databases = [db.model_copy(update={"prune": True}) for db in target.play.databases]
    return replace(target, play=target.play.model_copy(update={"databases": databases}))


def results(plans: list[HostPlan], ok: int) -> dict[str, Any]:
    document = json.loads(planfile.dump(planfile.document(plans)))
    actions = [{"host": h["host"], "address": a["address"], "operation": a["operation"], "hazards": a["hazards"]}
               for h in document["hosts"] for a in h["actions"]]
    recap = {"ok": ok, "changed": len(actions), "add": 0, "change": 0, "destroy": 0}
    for plan in plans:
        for key, count in plan.counts().items():
            recap[key] += count
    return {"changed": bool(actions), "plan": document, "actions": actions, "recap": recap,
            "hazards": sorted({h for a in actions for h in a["hazards"]})}


def diff(plans: list[HostPlan]) -> dict[str, str]:
    """Each action's before and after as erpprov shows them (secrets masked), and the plan's text."""
    before, after = [], []
    for plan in plans:
        for action in plan.ordered():
            title = f"{plan.host} {action.address} ({action.op.value})"
            before.append(f"{title}: {json.dumps(action.before, sort_keys=True, default=str)}")
            after.append(f"{title}: {json.dumps(action.after, sort_keys=True, default=str)}")
    return {"before_header": "live", "after_header": "desired", "before": "\n".join(before) + "\n",
            "after": "\n".join(after) + "\n", "prepared": render.text(plans)}


def worded(error: ErpprovError) -> str:
    """The CLI's message; a refusal of hazards says how to allow them with this module's option."""
    cause = error.cause if isinstance(error, HostFailed) else error
    if isinstance(cause, HazardsRefused):
        names = ", ".join(h.value for h in cause.hazards)
        return f"{cause.message}\n  hint: review them in check mode, then allow them with allow_hazards: [{names}]"
    return str(error)


if __name__ == "__main__":
    main()
