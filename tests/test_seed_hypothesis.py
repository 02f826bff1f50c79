"""Random seed rows converge: apply(A) re-plans empty, and apply(A) then apply(B, exact) leaves
exactly B — for values whose text PostgreSQL reads in its own way (numerics with trailing zeros,
timestamps in other zones, JSON) and text that looks like CSV syntax or NULL."""

from __future__ import annotations

import datetime
import json
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from erpprov.core.actions import Hazard
from tests.helpers import apply_all, load_targets, plan_of

TABLE = """
- name: seeded
  hosts: dev
  databases:
    - name: {db}
      tables:
        - name: items
          columns:
            - {{name: id, type: int, primary_key: true}}
            - {{name: n, type: numeric}}
            - {{name: t, type: text}}
            - {{name: ts, type: timestamptz}}
            - {{name: j, type: json}}
          data: {{from: rows.json, mode: exact}}
"""

# Text that CSV, COPY or a reader could mistake for something else; no NUL (PostgreSQL text holds none).
TEXT = st.one_of(
    st.sampled_from(["", "NULL", "null", "\\N", "\\.", '"', '""', ",", "a,b", "line\nbreak", "cr\r\nlf", " pad ",
                     "'quoted'", "tab\there", "ünïcødé ✓ 日本", "'); DROP TABLE items; --", "{{ not a template }}"]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"), max_size=12),
)
NUMERIC = st.builds(lambda whole, frac, zeros: f"{whole}.{frac}{'0' * zeros}",
                    st.integers(-10**6, 10**6), st.integers(0, 999), st.integers(0, 3))
ZONES = [datetime.UTC, datetime.timezone(datetime.timedelta(hours=5, minutes=30))]
TIMESTAMP = st.datetimes(min_value=datetime.datetime(1990, 1, 1), max_value=datetime.datetime(2100, 1, 1),
                         timezones=st.sampled_from(ZONES))
SCALAR = st.none() | st.booleans() | st.integers(-1000, 1000) | TEXT
# A mapping or list is the JSON document itself (a string would be the document's text).
JSON = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                    max_leaves=5).filter(lambda v: isinstance(v, (list, dict)))


@st.composite
def rows(draw) -> list[dict]:
    ids = draw(st.lists(st.integers(1, 40), unique=True, max_size=8))
    return [{"id": i, "n": draw(st.none() | NUMERIC), "t": draw(st.none() | TEXT),
             "ts": draw(st.none() | TIMESTAMP.map(lambda d: d.isoformat(sep=" "))),
             "j": draw(st.none() | JSON)} for i in ids]


def _live(pg) -> dict:  # type: ignore[no-untyped-def]
    with pg.connect(pg.dbname) as conn:
        return {r[0]: r[1:] for r in conn.execute("SELECT id, n, t, ts, j::text FROM items")}


def _expected(declared: list[dict]) -> dict:
    return {r["id"]: (None if r["n"] is None else Decimal(r["n"]), r["t"],
                      None if r["ts"] is None else datetime.datetime.fromisoformat(r["ts"]),
                      None if r["j"] is None else json.dumps(r["j"], ensure_ascii=False)) for r in declared}


def _same(live: dict, declared: list[dict]) -> bool:
    want = _expected(declared)
    if live.keys() != want.keys():
        return False
    for key, (n, t, ts, j) in live.items():
        wn, wt, wts, wj = want[key]
        if (n, t, ts) != (wn, wt, wts) or (j is None) != (wj is None) or (j and json.loads(j) != json.loads(wj)):
            return False
    return True


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(a=rows(), b=rows())
def test_random_rows_converge_and_exact_leaves_exactly_b(pg, a, b):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "playbooks").mkdir()
        for declared in (a, b):
            (root / "playbooks" / "rows.json").write_text(json.dumps(declared, ensure_ascii=False), encoding="utf-8")
            targets = load_targets(root, pg, TABLE.format(db=pg.dbname))
            apply_all(targets, allow=frozenset({Hazard.DELETES_DATA}))  # fails unless the re-plan is empty
            assert plan_of(targets) == []
            assert _same(_live(pg), declared), (_live(pg), declared)
