"""One rule says which names hold a secret, for template variables and container env alike."""

from __future__ import annotations

import pytest

from erpprov.core.secrets import is_secret_name
from erpprov.drivers.docker_spec import redact_env


@pytest.mark.parametrize("name", ["pg_password", "POSTGRES_PASSWORD", "PGPASSFILE", "app_pwd", "api_secret",
                                  "GITHUB_TOKEN", "ssl_key", "AWS_CREDENTIALS"])
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["POSTGRES_DB", "PGDATA", "pg_host", "TZ"])
def test_plain_names(name: str) -> None:
    assert not is_secret_name(name)


def test_container_env_hides_what_a_template_variable_would() -> None:
    shown = redact_env({"POSTGRES_PASSWORD": "a", "API_KEY": "b", "PGPASSFILE": "c", "POSTGRES_DB": "d"})
    assert shown["POSTGRES_DB"] == "d"
    assert {shown[k] for k in ("POSTGRES_PASSWORD", "API_KEY", "PGPASSFILE")} == {"(sensitive)"}
