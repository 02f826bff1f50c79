"""What the collection's modules share: the connection options (erpprov's pg_* host variables)
and the import of erpprov on the managed node."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# erpprov's Connection fields, as module options. Only those given are passed on, so erpprov's
# own defaults (127.0.0.1:5432, user postgres, ...) hold for the rest.
CONNECTION_OPTIONS: dict[str, dict[str, Any]] = {
    "driver": {"type": "str", "choices": ["auto", "docker", "local", "external"]},
    "pg_host": {"type": "str"},
    "pg_port": {"type": "int"},
    "pg_user": {"type": "str"},
    "pg_password": {"type": "str", "no_log": True},
    "pg_database": {"type": "str"},
    "pg_sslmode": {"type": "str", "choices": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]},
    "pg_sslrootcert": {"type": "path"},
    "pg_sslcert": {"type": "path"},
    "pg_sslkey": {"type": "path", "no_log": False},  # a file's path, not the key itself
    "pg_connect_timeout": {"type": "float"},
    "pg_lock_timeout": {"type": "float"},
    "pg_statement_timeout": {"type": "float"},
    "docker_host": {"type": "str"},
}

PIP_PACKAGE = "erpprov"


def connection_settings(params: dict[str, Any]) -> dict[str, Any]:
    return {name: params[name] for name in CONNECTION_OPTIONS if params.get(name) is not None}


def desired_plays(params: dict[str, Any]) -> Path | list[dict[str, Any]]:
    """What erpprov loads for the task: the playbook file, or the inline state as one play."""
    return Path(params["playbook"]) if params["playbook"] else [{"name": "ansible", **params["state"]}]


def hide_declared_secrets(module: Any, is_secret_name: Any) -> None:
    """Hide the secret-named values of the task's state and vars before erpprov parses them."""
    hide(module, secret_values({"state": module.params["state"], "vars": module.params["vars"]}, is_secret_name))


def fail_without_erpprov(module: Any, error: ImportError) -> None:
    """Fail the task with how to install erpprov on the node. No module argument is shown: the
    desired state may hold passwords that erpprov, had it been there, would have hidden."""
    module.fail_json(
        msg=f"erpprov is not importable by the managed node's Python ({sys.executable}): {error}. "
            f"Install it there with `{sys.executable} -m pip install {PIP_PACKAGE}` (Python 3.11 or newer), "
            "or point ansible_python_interpreter at a Python that has it.",
        invocation={"module_args": {}},
    )


def hide(module: Any, values: Any) -> None:
    """Never show ``values`` (strings) in this task's result, diff or -vvv log: Ansible masks
    every no_log value wherever it appears in what the module returns."""
    for value in values:
        if isinstance(value, str) and len(value) >= 3:
            module.no_log_values.add(value)


def secret_values(node: Any, is_secret_name: Any) -> list[str]:
    """The string values under keys named like a secret (password, token, ...), anywhere in
    ``node``: what the module hides before erpprov has even parsed the state."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, (str, int)) and is_secret_name(str(key)):
                found.append(str(value))
            else:
                found += secret_values(value, is_secret_name)
    elif isinstance(node, list):
        for item in node:
            found += secret_values(item, is_secret_name)
    return found
