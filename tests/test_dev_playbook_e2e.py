"""The mission, end to end: `erpprov apply playbooks/dev.yaml` on a machine with nothing running,
with the Docker engine and with the embedded local cluster, then a second apply changes nothing."""

from __future__ import annotations

import shutil
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import yaml

from erpprov.drivers.embedded import free_port
from tests.dockerenv import needs_engine
from tests.helpers import erpprov

ROOT = Path(__file__).resolve().parent.parent


def _project(base: Path, driver: str, container: str) -> tuple[Path, int, dict[str, str]]:
    for name in ("playbooks", "templates"):
        shutil.copytree(ROOT / name, base / name)
    playbook = base / "playbooks" / "dev.yaml"
    playbook.write_text(playbook.read_text().replace("name: erp-postgres", f"name: {container}"))
    inventory = yaml.safe_load((ROOT / "inventory.yaml").read_text())
    inventory["all"]["children"]["dev"]["hosts"]["localhost"]["driver"] = driver
    (base / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    port = free_port()
    env = {"ERP_PG_PORT": str(port), "POSTGRES_PASSWORD": "dev-super", "MYAPP_PASSWORD": "app-pw"}
    return base, port, env


@pytest.fixture(params=["local", pytest.param("docker", marks=needs_engine)])
def dev_project(request, server_tmp: Path):  # type: ignore[no-untyped-def]
    container = f"erpprov-e2e-{uuid.uuid4().hex[:8]}"
    cwd, port, env = _project(server_tmp, request.param, container)
    extra = ["-e", f"erp_postgres_image={request.getfixturevalue('test_image')}"] if request.param == "docker" else []
    yield cwd, port, env, extra, request.param
    erpprov(cwd, "destroy", "--volumes", "--yes", *extra, env=env)


def test_dev_playbook_from_nothing_then_nothing_to_do(dev_project):
    cwd, port, env, extra, driver = dev_project
    first = erpprov(cwd, "apply", *extra, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    kind = "cluster" if driver == "local" else "container"
    assert f"changed: [localhost] {kind} erpprov-e2e-" in first.stdout
    for table in ("users", "posts", "orders"):
        assert f"changed: [localhost] table erp.public.{table}" in first.stdout
        assert f"changed: [localhost] data erp.public.{table}" in first.stdout

    second = erpprov(cwd, "apply", *extra, env=env)
    assert second.returncode == 0, second.stderr
    assert "changed:" not in second.stdout and "changed=0" in second.stdout
    assert "ok: [localhost] table erp.public.orders" in second.stdout
    assert "ok: [localhost] data erp.public.orders" in second.stdout  # the seeded rows are there
    assert erpprov(cwd, "plan", "--detailed-exitcode", *extra, env=env).returncode == 0
    status = erpprov(cwd, "status", *extra, env=env)
    assert status.returncode == 0, status.stdout
    assert f"localhost ({driver}): healthy" in status.stdout and "role myapp: can log in to erp" in status.stdout
    assert ("data_dir: " if driver == "local" else "image: ") in status.stdout  # the driver's facts are shown

    with psycopg.connect(host="127.0.0.1", port=port, user="myapp", password="app-pw", dbname="erp",
                         autocommit=True) as conn:
        user_id = conn.execute("INSERT INTO users (username, email) VALUES ('ada', 'ada@example.com') "
                               "RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO posts (user_id, title) VALUES (%s, 'hello')", (user_id,))
        conn.execute("INSERT INTO orders (order_number, user_id, total_amount) VALUES ('A-1', %s, 12.50)",
                     (user_id,))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO orders (order_number, user_id, status) VALUES ('A-2', %s, 'lost')",
                         (user_id,))
    env_file = cwd / ".env.app"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert f"DATABASE_URL=postgresql://myapp:app-pw@127.0.0.1:{port}/erp" in env_file.read_text()


def test_a_stopped_server_is_started_with_its_data(dev_project):
    cwd, port, env, extra, _driver = dev_project
    assert erpprov(cwd, "apply", *extra, env=env).returncode == 0
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password="dev-super", dbname="erp",
                         autocommit=True) as conn:
        conn.execute("INSERT INTO users (username, email) VALUES ('kept', 'kept@example.com')")
    assert erpprov(cwd, "destroy", *extra, env=env).returncode == 0  # removes the server, keeps the data
    down = erpprov(cwd, "status", *extra, env=env)
    assert down.returncode == 1 and "UNHEALTHY" in down.stdout
    again = erpprov(cwd, "apply", *extra, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password="dev-super", dbname="erp") as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE username = 'kept'").fetchone()[0] == 1


def test_destroy_volumes_needs_yes_when_not_interactive(dev_project):
    cwd, _port, env, extra, _driver = dev_project
    assert erpprov(cwd, "apply", *extra, env=env).returncode == 0
    refused = erpprov(cwd, "destroy", "--volumes", *extra, env=env, timeout=60)  # stdin is not a terminal
    assert refused.returncode == 1 and "refusing without --yes" in refused.stderr
    assert (cwd / "dev-environment/volumes/postgres/PG_VERSION").exists()
    assert erpprov(cwd, "destroy", "--volumes", "--yes", *extra, env=env).returncode == 0
    assert not (cwd / "dev-environment/volumes/postgres").exists()


def test_backup_destroy_everything_apply_restore_brings_every_row_back(dev_project):
    cwd, port, env, extra, _driver = dev_project
    assert erpprov(cwd, "apply", *extra, env=env).returncode == 0
    with psycopg.connect(host="127.0.0.1", port=port, user="myapp", password="app-pw", dbname="erp",
                         autocommit=True) as conn:
        conn.execute("INSERT INTO users (username, email) SELECT 'u' || i, 'u' || i || '@example.com' "
                     "FROM generate_series(1, 500) AS i")
        conn.execute("INSERT INTO orders (order_number, user_id, total_amount, status) "
                     "SELECT 'O-' || id, id, id * 1.25, 'paid' FROM users")
    backup = erpprov(cwd, "backup", "--db", "erp", "-o", "backups/erp.sql", *extra, env=env)
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert "sha256" in backup.stdout + backup.stderr
    assert erpprov(cwd, "destroy", "--volumes", "--yes", *extra, env=env).returncode == 0
    assert erpprov(cwd, "apply", *extra, env=env).returncode == 0
    restored = erpprov(cwd, "restore", "backups/erp.sql", "--db", "erp", "--yes", *extra, env=env)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    with psycopg.connect(host="127.0.0.1", port=port, user="myapp", password="app-pw", dbname="erp") as conn:
        # 503 users (3 seeded, whose ids the users sequence skips), one order each, and 5 seeded orders
        assert conn.execute("SELECT count(*), sum(total_amount) FROM orders").fetchone() == (
            508, Decimal("158827.39"))
    assert erpprov(cwd, "plan", "--detailed-exitcode", *extra, env=env).returncode == 0


def test_dev_playbook_against_an_external_server(tmp_path, pg):
    from tests.helpers import apply_all, load_targets, plan_of

    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    shutil.copytree(ROOT / "playbooks" / "seed", tmp_path / "playbooks" / "seed")  # its data files
    targets = load_targets(tmp_path, pg, (ROOT / "playbooks" / "dev.yaml").read_text())
    changed = apply_all(targets)
    assert {"table.erp.public.users", "table.erp.public.posts", "table.erp.public.orders",
            "grant.erp.table.public.orders.myapp"} <= set(changed)
    assert plan_of(targets) == []
    with pg.connect("erp") as conn:
        keys = {row[0] for row in conn.execute("SELECT conname FROM pg_constraint WHERE conrelid = "
                                               "ANY ('{users,posts,orders}'::regclass[])")}
        indexes = {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert {"users_pkey", "users_username_key", "users_email_key", "posts_user_id_fkey",
            "orders_status_check", "orders_user_id_fkey"} <= keys
    assert {"posts_user_id_idx", "orders_open_idx", "orders_status_created_at_idx"} <= indexes
