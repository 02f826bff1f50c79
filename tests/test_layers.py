"""The diff stays pure beyond what import-linter can say: of psycopg it may use only the SQL
composition module (`psycopg.sql` builds text; it holds no connection)."""

from __future__ import annotations

import ast
from pathlib import Path

DIFF = Path(__file__).resolve().parents[1] / "erpprov" / "diff"


def _psycopg_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "psycopg"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "psycopg":
            found += [f"{node.module}.{a.name}" for a in node.names]
    return found


def test_the_diff_uses_only_psycopgs_sql_composition():
    modules = sorted(DIFF.rglob("*.py"))
    assert len(modules) >= 5, "the diff package moved: point DIFF at it"
    used = {str(path.relative_to(DIFF)): _psycopg_imports(path) for path in modules}
    assert {name for imports in used.values() for name in imports} == {"psycopg.sql"}, used
