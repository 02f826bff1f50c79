"""A Compose service read into the docker driver's container spec, from both spellings of `compose
config`: docker-compose 1.x writes short strings, the compose plugin (2.x) long mappings. Pure:
no engine, no Compose (tests/test_compose.py runs the real one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from erpprov.core.model import ComposeService
from erpprov.drivers.compose import service_container

REFERENCE = ComposeService(compose="docker-compose.yml", service="postgres")
SHORT = {"image": "postgres:16", "environment": {"POSTGRES_PASSWORD": "s", "EMPTY": None},
         "ports": ["127.0.0.1:5433:5432/tcp", "8080"], "volumes": ["pgdata:/var/lib/postgresql/data:rw"],
         "healthcheck": {"test": ["CMD-SHELL", "pg_isready"], "interval": "1s", "retries": 5}}
LONG = {"image": "postgres:16", "environment": {"POSTGRES_PASSWORD": "s", "EMPTY": ""},
        "ports": [{"mode": "ingress", "host_ip": "127.0.0.1", "target": 5432, "published": "5433", "protocol": "tcp"},
                  {"target": 8080}],
        "volumes": [{"type": "volume", "source": "pgdata", "target": "/var/lib/postgresql/data", "volume": {}}],
        "healthcheck": {"test": ["CMD-SHELL", "pg_isready"], "interval": "1s", "retries": 5}}


@pytest.mark.parametrize("service", [SHORT, LONG], ids=["compose-1", "compose-2"])
def test_both_spellings_read_the_same(service: dict[str, object], tmp_path: Path) -> None:
    spec = service_container(service, {"pgdata": {}}, project="shop", reference=REFERENCE, base=tmp_path)
    assert spec.name == "shop-postgres" and spec.image == "postgres:16"
    assert spec.ports == ["127.0.0.1:5433:5432"]
    assert spec.volume == "shop_pgdata" and spec.data_dir is None
    assert spec.env == {"POSTGRES_PASSWORD": "s", "EMPTY": ""}
    assert spec.healthcheck.test == ["CMD-SHELL", "pg_isready"] and spec.healthcheck.interval == 1.0


@pytest.mark.parametrize(("volumes", "declared", "expected"), [
    (["pgdata:/var/lib/postgresql/data"], {"pgdata": {"name": "team-data"}}, ("team-data", None)),
    (["pgdata:/var/lib/postgresql/data"], {"pgdata": {"external": True}}, ("pgdata", None)),
    (["./data/pg:/var/lib/postgresql/data"], {}, (None, "data/pg")),
    ([{"type": "bind", "source": "{tmp}/pg", "target": "/var/lib/postgresql/data"}], {}, (None, "{tmp}/pg")),
    (["logs:/var/log"], {}, (None, None)),
])
def test_the_data_mount_is_the_one_at_pgdata(tmp_path: Path, volumes: list[Any], declared: dict[str, object],
                                             expected: tuple[str | None, str | None]) -> None:
    volumes = [{**v, "source": v["source"].format(tmp=tmp_path)} if isinstance(v, dict) else v for v in volumes]
    spec = service_container({"image": "postgres:16", "volumes": volumes}, declared, project="shop",
                             reference=REFERENCE, base=tmp_path)
    volume, data_dir = expected[0], expected[1] and expected[1].format(tmp=tmp_path)
    assert spec.volume == volume
    assert spec.data_dir == (str((tmp_path / data_dir).resolve()) if data_dir else None)


def test_no_healthcheck_or_a_disabled_one_waits_for_connections(tmp_path: Path) -> None:
    for check in (None, {"disable": True}):
        spec = service_container({"image": "postgres:16", "healthcheck": check}, {}, project="shop",
                                 reference=REFERENCE, base=tmp_path)
        assert spec.healthcheck.test == "NONE"
