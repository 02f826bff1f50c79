"""`erpprov status`: is each host's server up, and can its login roles get in?"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from erpprov.core.target import Target
from erpprov.drivers import make_driver
from erpprov.errors import ErpprovError
from erpprov.postgres.connect import conninfo, one_value


@dataclass
class HealthReport:
    driver: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)  # what the driver knows: image, ports, data dir, ...

    @property
    def healthy(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


def check_target(target: Target) -> HealthReport:
    try:
        driver = make_driver(target)
    except ErpprovError as exc:
        return HealthReport("?", [("driver", False, exc.message)])
    state = driver.status()
    report = HealthReport(driver.name, facts=state.facts)
    report.checks.append((driver.name, state.running and state.healthy,
                          "running" if state.running else ("stopped" if state.exists else "not created")
                          + (f" ({state.detail})" if state.detail else "")))
    if not state.running:
        return report
    params = conninfo(target.connection)
    params["connect_timeout"] = 3
    try:
        with psycopg.connect(**params) as conn:
            version = one_value(conn, "SHOW server_version")
        report.checks.append(("server", True, f"accepting connections, PostgreSQL {version}"))
    except psycopg.Error as exc:
        report.checks.append(("server", False, str(exc).strip().splitlines()[-1]))
        return report
    database = target.main_database or target.connection.pg_database
    for role in target.play.roles:
        if not role.login or role.password is None or role.state == "absent":
            continue
        login = dict(params, user=role.name, password=role.password.get_secret_value(), dbname=database)
        try:
            psycopg.connect(**login).close()
            report.checks.append((f"role {role.name}", True, f"can log in to {database}"))
        except psycopg.Error as exc:
            report.checks.append((f"role {role.name}", False, str(exc).strip().splitlines()[-1]))
    return report
