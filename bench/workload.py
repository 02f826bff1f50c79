"""The benchmark's workload, and the same workload written three ways: an erpprov playbook, an
Ansible playbook (community.postgresql, as a user would write it: loops over vars) and a plain SQL
script for `psql -f`.

For N tables:
  * N tables ``t0001``..``tNNNN`` of 9 columns (a serial primary key, 8 more), 2 named indexes
    each, and 1 foreign key each: table i references table i-1, the first references itself;
  * N/4 login roles ``bench_r001``.. with passwords;
  * each role gets CONNECT on the database and SELECT, INSERT, UPDATE, DELETE on 4 tables
    (4 table grants per role, every table granted to exactly one role).

No sequence grants: grants on `sequences: ALL` for serial columns of tables created in the same
run were a known erpprov issue when this benchmark was written.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

DATABASE = "erpbench"
ROLE_PREFIX = "bench_r"
TABLE_PRIVILEGES = ["SELECT", "INSERT", "UPDATE", "DELETE"]
TABLES_PER_ROLE = 4
# Above this many tables the SQL script commits once per this many: a default server's lock table
# holds about 1,400 new tables' locks in one transaction.
LARGE_SIZE = 1000

# (name, type, not null, default); `id` is the primary key, `parent_id` the foreign key.
COLUMNS: list[tuple[str, str, bool, str | None]] = [
    ("id", "serial", True, None),
    ("parent_id", "integer", False, None),
    ("code", "varchar(30)", True, None),
    ("name", "varchar(100)", True, None),
    ("amount", "numeric(12,2)", True, "0"),
    ("quantity", "integer", True, "0"),
    ("active", "boolean", True, "true"),
    ("created_at", "timestamp", True, "CURRENT_TIMESTAMP"),
    ("note", "text", False, None),
]
# (name suffix, columns)
INDEXES: list[tuple[str, list[str]]] = [
    ("parent_id_idx", ["parent_id"]),
    ("code_created_at_idx", ["code", "created_at"]),
]


@dataclass(frozen=True)
class Role:
    name: str
    password: str
    tables: tuple[str, ...]


@dataclass(frozen=True)
class Workload:
    size: int

    @cached_property
    def tables(self) -> list[str]:
        # Built once per instance: cached_property stores into the instance __dict__ directly, which
        # a frozen dataclass (without slots) allows. Treat the list as read-only.
        return [f"t{i:04d}" for i in range(1, self.size + 1)]

    def parent(self, index: int) -> str:
        """The table that table number `index` (0-based) references: the previous one, or itself."""
        tables = self.tables
        return tables[index - 1] if index > 0 else tables[0]

    @property
    def roles(self) -> list[Role]:
        tables = self.tables
        count = max(1, self.size // TABLES_PER_ROLE)
        return [Role(name=f"{ROLE_PREFIX}{i + 1:03d}", password=f"bench-secret-{i + 1:03d}",
                     tables=tuple(tables[i * TABLES_PER_ROLE:(i + 1) * TABLES_PER_ROLE]))
                for i in range(count)]

    @property
    def objects(self) -> dict[str, int]:
        roles = self.roles
        return {"tables": self.size, "columns": self.size * len(COLUMNS), "indexes": self.size * len(INDEXES),
                "foreign_keys": self.size, "roles": len(roles),
                "table_grants": sum(len(r.tables) for r in roles), "database_grants": len(roles)}


# --- erpprov ------------------------------------------------------------------------------------

def erpprov_inventory(host: str, port: int, user: str, password: str) -> str:
    inventory = {"all": {"children": {"bench": {"hosts": {"benchhost": {
        "driver": "external", "pg_host": host, "pg_port": port, "pg_user": user, "pg_password": password}}}}}}
    return yaml.safe_dump(inventory, sort_keys=False)


def erpprov_playbook(work: Workload) -> str:
    return dump_yaml([erpprov_play(work)])


def dump_yaml(value: object) -> str:
    """Block YAML, through libyaml when it is there: the pure-Python emitter takes half a minute
    for 10,000 tables."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(value, Dumper=dumper, sort_keys=False, default_flow_style=None, width=120)


def erpprov_play(work: Workload) -> dict[str, object]:
    roles = work.roles
    owner = {t: r.name for r in roles for t in r.tables}
    tables = []
    for index, name in enumerate(work.tables):
        columns = []
        for col, typ, not_null, default in COLUMNS:
            spec: dict[str, object] = {"name": col, "type": typ}
            if col == "id":
                spec["primary_key"] = True
            elif not_null:
                spec["nullable"] = False
            if default is not None:
                spec["default"] = default
            columns.append(spec)
        table: dict[str, object] = {
            "name": name,
            "columns": columns,
            "foreign_keys": [{"columns": ["parent_id"], "references": {"table": work.parent(index)}}],
            "indexes": [{"name": f"{name}_{suffix}", "columns": list(cols)} for suffix, cols in INDEXES],
        }
        if name in owner:
            table["grants"] = [{"to": owner[name], "privileges": list(TABLE_PRIVILEGES)}]
        tables.append(table)
    return {
        "name": f"erpprov benchmark, {work.size} tables",
        "hosts": "bench",
        "roles": [{"name": r.name, "login": True, "password": r.password} for r in roles],
        "databases": [{
            "name": DATABASE,
            "grants": [{"to": r.name, "privileges": ["CONNECT"]} for r in roles],
            "tables": tables,
        }],
    }


# --- Ansible (community.postgresql) -------------------------------------------------------------

def ansible_inventory(python: str) -> str:
    return (f"[bench]\nlocalhost ansible_connection=local ansible_python_interpreter={python}\n")


def ansible_vars(work: Workload, host: str, port: int, user: str, password: str) -> str:
    tables = [{"name": name, "parent": work.parent(i)} for i, name in enumerate(work.tables)]
    data = {
        "pg_host": host, "pg_port": port, "pg_user": user, "pg_password": password,
        "bench_database": DATABASE,
        "bench_roles": [{"name": r.name, "password": r.password, "tables": list(r.tables)} for r in work.roles],
        "bench_tables": tables,
        "bench_indexes": [{"suffix": suffix, "columns": list(cols)} for suffix, cols in INDEXES],
    }
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)


def _column_sql(col: str, typ: str, not_null: bool, default: str | None, parent: str) -> str:
    text = f"{col} {typ}"
    if col == "id":
        return text + " PRIMARY KEY"
    if col == "parent_id":
        return text + f" REFERENCES {parent} (id)"
    if not_null:
        text += " NOT NULL"
    if default is not None:
        text += f" DEFAULT {default}"
    return text


def ansible_playbook() -> str:
    """Fixed tasks that loop over the variables file. postgresql_table takes raw column definitions,
    so the foreign key goes inline (REFERENCES), as a user would write it; the indexes are
    postgresql_idx tasks (its defaults: CREATE INDEX CONCURRENTLY)."""
    columns = [_column_sql(c, t, n, d, "{{ item.parent }}") for c, t, n, d in COLUMNS]
    column_lines = "\n".join(f"          - \"{c}\"" for c in columns)
    return f"""\
- name: Benchmark workload with community.postgresql
  hosts: bench
  gather_facts: false
  module_defaults:
    group/community.postgresql.all:
      login_host: "{{{{ pg_host }}}}"
      login_port: "{{{{ pg_port }}}}"
      login_user: "{{{{ pg_user }}}}"
      login_password: "{{{{ pg_password }}}}"
  vars_files:
    - bench_vars.yaml
  tasks:
    - name: Login roles
      community.postgresql.postgresql_user:
        name: "{{{{ item.name }}}}"
        password: "{{{{ item.password }}}}"
        role_attr_flags: LOGIN
      loop: "{{{{ bench_roles }}}}"
      loop_control:
        label: "{{{{ item.name }}}}"

    - name: Database
      community.postgresql.postgresql_db:
        name: "{{{{ bench_database }}}}"

    - name: CONNECT for every role
      community.postgresql.postgresql_privs:
        login_db: "{{{{ bench_database }}}}"
        type: database
        objs: "{{{{ bench_database }}}}"
        privs: CONNECT
        roles: "{{{{ bench_roles | map(attribute='name') | join(',') }}}}"

    - name: Tables
      community.postgresql.postgresql_table:
        login_db: "{{{{ bench_database }}}}"
        name: "{{{{ item.name }}}}"
        columns:
{column_lines}
      loop: "{{{{ bench_tables }}}}"
      loop_control:
        label: "{{{{ item.name }}}}"

    - name: Indexes
      community.postgresql.postgresql_idx:
        login_db: "{{{{ bench_database }}}}"
        table: "{{{{ item.0.name }}}}"
        idxname: "{{{{ item.0.name }}}}_{{{{ item.1.suffix }}}}"
        columns: "{{{{ item.1.columns }}}}"
      loop: "{{{{ bench_tables | product(bench_indexes) | list }}}}"
      loop_control:
        label: "{{{{ item.0.name }}}}_{{{{ item.1.suffix }}}}"

    - name: Table grants
      community.postgresql.postgresql_privs:
        login_db: "{{{{ bench_database }}}}"
        type: table
        objs: "{{{{ item.tables | join(',') }}}}"
        privs: {",".join(TABLE_PRIVILEGES)}
        roles: "{{{{ item.name }}}}"
      loop: "{{{{ bench_roles }}}}"
      loop_control:
        label: "{{{{ item.name }}}}"
"""


# --- plain SQL ----------------------------------------------------------------------------------

def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_script(work: Workload) -> str:
    """Roles and the database from the maintenance database, then everything inside the new database
    in one transaction (one per LARGE_SIZE tables): what a hand-written migration would do."""
    roles = work.roles
    lines = ["\\set ON_ERROR_STOP on"]
    lines += [f"CREATE ROLE {r.name} LOGIN PASSWORD {_literal(r.password)};" for r in roles]
    lines.append(f"CREATE DATABASE {DATABASE};")
    lines += [f"GRANT CONNECT ON DATABASE {DATABASE} TO {r.name};" for r in roles]
    lines += [f"\\connect {DATABASE}", "BEGIN;"]
    owner = {t: r.name for r in roles for t in r.tables}
    for index, name in enumerate(work.tables):
        if index and index % LARGE_SIZE == 0:
            lines += ["COMMIT;", "BEGIN;"]
        cols = ",\n  ".join(_column_sql(c, t, n, d, work.parent(index)) for c, t, n, d in COLUMNS)
        lines.append(f"CREATE TABLE {name} (\n  {cols}\n);")
        lines += [f"CREATE INDEX {name}_{suffix} ON {name} ({', '.join(cols_)});" for suffix, cols_ in INDEXES]
        if name in owner:
            lines.append(f"GRANT {', '.join(TABLE_PRIVILEGES)} ON {name} TO {owner[name]};")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def write_all(work: Workload, directory: Path, *, host: str, port: int, user: str, password: str,
              ansible_python: str | None) -> dict[str, Path]:
    """Every generated file of one size, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "erpprov_inventory": directory / "inventory.yaml",
        "erpprov_playbook": directory / "playbook.yaml",
        "sql": directory / "workload.sql",
        "ansible_playbook": directory / "ansible_playbook.yaml",
        "ansible_vars": directory / "bench_vars.yaml",
        "ansible_inventory": directory / "ansible_inventory.ini",
    }
    files["erpprov_inventory"].write_text(erpprov_inventory(host, port, user, password))
    files["erpprov_playbook"].write_text(erpprov_playbook(work))
    files["sql"].write_text(sql_script(work))
    files["ansible_playbook"].write_text(ansible_playbook())
    files["ansible_vars"].write_text(ansible_vars(work, host, port, user, password))
    files["ansible_inventory"].write_text(ansible_inventory(ansible_python or "python3"))
    return files
