"""erpprov.postgres.facts: what a PostgreSQL server holds, as Ansible facts."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: facts
short_description: Facts about a PostgreSQL server, read with erpprov
description:
  - Sets C(ansible_facts.erpprov) to the server's version, its roles and databases. Reads the catalogs
    only; never changes the server.
  - With I(state) or I(playbook) (as in M(erpprov.postgres.apply)), adds C(managed), the counts of declared,
    unmanaged and pending objects.
extends_documentation_fragment:
  - erpprov.postgres.connection
requirements:
  - Python 3.11 or newer on the managed node, with erpprov (C(pip install erpprov)).
options:
  playbook:
    description: An erpprov playbook on the managed node.
    type: path
  state:
    description: The desired state inline (the keys of one erpprov play).
    type: dict
  vars:
    description: Variables for erpprov's own templates.
    type: dict
"""

EXAMPLES = r"""
- erpprov.postgres.facts:
    pg_password: "{{ vault_pg_password }}"
- ansible.builtin.debug:
    msg: "{{ inventory_hostname }} runs PostgreSQL {{ ansible_facts.erpprov.server_version }}"
"""

RETURN = r"""
ansible_facts:
  description: C(erpprov) with server_version, server_version_num, current_user, is_superuser, roles
    (names), databases (name to owner and encoding) and, given a state, managed (declared, unmanaged,
    pending).
  type: dict
  returned: always
"""

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
    from erpprov.apply.host import declared_addresses
    from erpprov.core.model import Connection
    from erpprov.core.secrets import is_secret_name
    from erpprov.drivers import make_driver
    from erpprov.errors import ErpprovError
    from erpprov.load.project import load_for_host
    from erpprov.load.taint import known_secrets
    from erpprov.plan.build import plan_target
    from erpprov.postgres.connect import connect, connection_kept
    from erpprov.state.catalog import read_cluster

    MISSING: ImportError | None = None
except ImportError as exc:  # the task fails with how to install it, not with a traceback
    MISSING = exc


def main() -> None:
    module = AnsibleModule(
        argument_spec={"playbook": {"type": "path"}, "state": {"type": "dict"}, "vars": {"type": "dict"},
                       **CONNECTION_OPTIONS},
        mutually_exclusive=[("playbook", "state")],
        supports_check_mode=True,
    )
    if MISSING is not None:
        fail_without_erpprov(module, MISSING)
    params = module.params
    hide_declared_secrets(module, is_secret_name)
    try:
        facts = read_facts(module, params)
    except ErpprovError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, ansible_facts={"erpprov": facts})


def read_facts(module: AnsibleModule, params: dict[str, Any]) -> dict[str, Any]:
    settings = connection_settings(params)
    connection = Connection.model_validate(settings)
    with connection_kept(connection), connect(connection) as admin:
        cluster = read_cluster(admin)
    number = cluster.server_version
    facts: dict[str, Any] = {
        "server_version": f"{number // 10000}.{number % 10000}",
        "server_version_num": number,
        "current_user": cluster.current_user,
        "is_superuser": cluster.is_superuser,
        "roles": sorted(cluster.roles),
        "databases": {name: {"owner": db.owner, "encoding": db.encoding} for name, db in cluster.databases.items()},
    }
    if params["state"] is None and params["playbook"] is None:
        return facts
    plays = desired_plays(params)
    managed = {"declared": 0, "unmanaged": 0, "pending": 0}
    for target in load_for_host(plays, settings, extra_vars=params["vars"]).targets:
        hide(module, known_secrets(target))
        plan = plan_target(target, fingerprinted=False)
        managed["declared"] += len(declared_addresses(target, make_driver(target)))
        managed["unmanaged"] += len(plan.unmanaged)
        managed["pending"] += len(plan.actions)
    facts["managed"] = managed
    return facts


if __name__ == "__main__":
    main()
