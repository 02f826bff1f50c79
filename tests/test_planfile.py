"""The saved plan file: written and read back in one versioned format; a file of another format,
or of none, is refused with a message that says so (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from erpprov.errors import ErpprovError
from erpprov.plan import planfile
from tests.test_render import scenario


def _saved(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    planfile.write(path, scenario(), inputs="f00", playbook=Path("playbooks/site.yaml"),
                   inventory=Path("inventory.yaml"), limit=None)
    return path


def test_a_written_plan_reads_back_as_written(tmp_path):
    saved = planfile.read(_saved(tmp_path))
    assert saved["format_version"] == planfile.FORMAT_VERSION
    assert saved["playbook"] == "playbooks/site.yaml" and saved["inventory"] == "inventory.yaml"
    assert saved["inputs_fingerprint"] == "f00"
    assert [h["host"] for h in saved["hosts"]] == ["localhost", "staging"]
    assert oct(_saved(tmp_path).stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("version, says", [
    ("2.0", 'format_version "2.0"'),
    (None, "has no format_version"),
])
def test_a_plan_of_an_unknown_or_missing_format_is_refused(tmp_path, version, says):
    path = _saved(tmp_path)
    document = json.loads(path.read_text())
    if version is None:
        del document["format_version"]
    else:
        document["format_version"] = version
    path.write_text(json.dumps(document))
    with pytest.raises(ErpprovError, match=says) as refused:
        planfile.read(path)
    assert "erpprov plan -o" in refused.value.hint


def test_what_is_not_a_plan_is_refused(tmp_path):
    with pytest.raises(ErpprovError, match="saved plan not found"):
        planfile.read(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(ErpprovError, match="is not a saved erpprov plan"):
        planfile.read(tmp_path / "other.json")
