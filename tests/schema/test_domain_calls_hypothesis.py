"""Generated domains whose defaults and checks call generated functions, some of which take or
return domains: a file either applies and converges (every part that calls a function is added once
the functions exist), or, when a domain calls a function over itself, is refused at load naming
both, with nothing created."""

from __future__ import annotations

import itertools

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erpprov.errors import ErpprovError
from tests.helpers import apply_all, load_targets, plan_of

DOMAINS = ["d0", "d1"]
_databases = itertools.count()


@st.composite
def files(draw: st.DrawFn) -> tuple[list[dict], list[dict], bool]:
    """(functions, domains, whether a domain calls a function over itself)."""
    functions = []
    for index in range(draw(st.integers(1, 3))):
        takes = draw(st.sampled_from(["integer", *DOMAINS]))
        returns = draw(st.sampled_from(["integer", *DOMAINS]))
        functions.append({"name": f"f{index}", "arguments": [{"name": "x", "type": takes}], "returns": returns,
                          "body": f"SELECT x::integer::{returns}", "volatility": "immutable"})

    def call(domain: str, of: str) -> tuple[str, dict]:
        function = draw(st.sampled_from(functions))
        return f"{function['name']}(({of})::integer::{function['arguments'][0]['type']})::integer", function

    domains, cycle = [], False
    for name in DOMAINS:
        domain: dict = {"name": name, "base_type": "integer"}
        used = []
        if draw(st.booleans()):
            domain["default"], function = call(name, "1")
            used.append(function)
        checks = []
        for number in range(draw(st.integers(0, 2))):
            expression, function = call(name, "VALUE")
            used.append(function)
            check = {"expression": f"coalesce({expression}, 0) = coalesce({expression}, 0)"}  # NULL too
            if draw(st.booleans()):
                check["name"] = f"{name}_check_{number}"
            checks.append(check)
        domain["checks"] = checks
        cycle |= any(name in (f["returns"], f["arguments"][0]["type"]) for f in used)
        domains.append(domain)
    return functions, domains, cycle


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=files())
def test_domains_calling_functions_converge_or_are_refused_naming_the_cycle(tmp_path_factory, pg, drawn):
    functions, domains, cycle = drawn
    database = f"{pg.dbname}_dc{next(_databases)}"
    play = [{"name": "p", "hosts": "dev", "databases": [{
        "name": database, "types": domains, "functions": functions,
        "tables": [{"name": "t", "columns": [{"name": d, "type": d} for d in DOMAINS]}]}]}]
    directory = tmp_path_factory.mktemp("dc")
    if cycle:
        with pytest.raises(ErpprovError, match="neither can be created before the other"):
            load_targets(directory, pg, yaml.safe_dump(play))
        with pg.connect() as conn:
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is None
        return
    targets = load_targets(directory, pg, yaml.safe_dump(play))
    try:
        apply_all(targets)
        assert plan_of(targets) == []
        with pg.connect(database) as conn:  # the domains hold what the file says, defaults working
            conn.execute("INSERT INTO t DEFAULT VALUES")
            declared = {d["name"]: len(d["checks"]) for d in domains}
            found = dict(conn.execute("SELECT t.typname, count(c.oid) FROM pg_type t LEFT JOIN pg_constraint c "
                                      "ON c.contypid = t.oid WHERE t.typname IN ('d0', 'd1') "
                                      "GROUP BY t.typname").fetchall())
            assert found == declared
    finally:
        with pg.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
