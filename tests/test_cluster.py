"""The embedded cluster behind the `local` driver and the test harness."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import psycopg
import pytest

from erpprov.drivers.embedded import LocalCluster, free_port
from erpprov.errors import ErpprovError


def _connect(cluster: LocalCluster, password: str) -> str:
    with psycopg.connect(host=cluster.host, port=cluster.port, user="postgres", password=password,
                         dbname="postgres") as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


@pytest.fixture
def base(server_tmp: Path) -> Path:
    return server_tmp


def test_pgserver_binaries_work_even_as_root(base: Path):
    spec = importlib.util.find_spec("pgserver")
    assert spec and spec.submodule_search_locations, "pgserver is a runtime dependency"
    bindir = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
    cluster = LocalCluster(base / "volumes" / "data", free_port(), bindir=bindir)
    try:
        cluster.init("pw with 'quotes'")
        cluster.start()
        assert _connect(cluster, "pw with 'quotes'")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            _connect(cluster, "wrong")
        cluster.stop()
        assert not cluster.running()
        cluster.start()  # a second start on existing data
        assert cluster.running()
    finally:
        cluster.destroy()
    assert not cluster.data_dir.exists()


def test_refuses_a_cluster_it_did_not_create(base: Path):
    data = base / "foreign"
    data.mkdir()
    (data / "PG_VERSION").write_text("15\n")
    cluster = LocalCluster(data, free_port())
    with pytest.raises(ErpprovError, match="did not create"):
        cluster.start()
    with pytest.raises(ErpprovError, match="already holds"):
        cluster.init("pw")


def test_refuses_a_non_empty_directory(base: Path):
    (base / "notes.txt").write_text("mine")
    with pytest.raises(ErpprovError, match="not empty"):
        LocalCluster(base, free_port()).init("pw")
    assert (base / "notes.txt").read_text() == "mine"


def test_port_in_use_is_a_clear_error(base: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cluster = LocalCluster(base / "data", busy.getsockname()[1])
        cluster.init("pw")
        try:
            with pytest.raises(ErpprovError, match="already in use"):
                cluster.start()
        finally:
            cluster.destroy()
