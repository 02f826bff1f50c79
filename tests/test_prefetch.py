"""A large playbook parsed in a forked child (yamlsrc.prefetch): the same values, the same errors
at the same positions, nothing stale and no child left behind."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from erpprov.errors import ErpprovError
from erpprov.load import yamlsrc
from tests.helpers import erpprov

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prefetch forks on Linux only")


def _playbook(tables: int) -> str:
    """A play large enough to be prefetched, with anchors, merges and non-string scalars."""
    lines = ["- name: big", "  hosts: all", "  vars: {a: 1, b: [x, y], m: {<<: {r: [select]}, w: [insert]}}",
             "  databases:", "    - name: erp", "      tables:"]
    for i in range(tables):
        lines += [f"        - name: t{i}", "          columns: &cols" if i == 0 else "          columns: *cols"]
        if i == 0:
            lines += ["            - {name: id, type: bigserial, primary_key: true}",
                      "            - {name: note, type: text, default: \"'{x}'\", nullable: yes}"]
        lines += [f"          comment: \"table {i}: 2024-01-0{i % 9 + 1}\""]
    return "\n".join(lines) + "\n"


def _prefetched(path: Path) -> bool:
    return str(path) in yamlsrc._pending


@pytest.fixture
def big(tmp_path: Path) -> Path:
    path = tmp_path / "big.yaml"
    path.write_text(_playbook(2000))
    assert path.stat().st_size > yamlsrc.PREFETCH_MIN_BYTES
    return path


def _reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_prefetched_values_equal_a_parse_in_this_process(big: Path) -> None:
    expected = yamlsrc.parse_yaml(big.read_bytes(), str(big))
    yamlsrc.prefetch(big)
    assert _prefetched(big)
    pid = yamlsrc._pending[str(big)][0]
    source = yamlsrc.load_yaml(big)
    assert source.data == expected.data
    assert source.locate((0, "databases", 0, "tables", 1500, "comment")) == expected.locate(
        (0, "databases", 0, "tables", 1500, "comment"))
    assert not _prefetched(big) and _reaped(pid)


def test_a_file_changed_after_the_prefetch_is_read_anew(big: Path) -> None:
    yamlsrc.prefetch(big)
    assert _prefetched(big)
    big.write_text(_playbook(2001))
    assert len(yamlsrc.load_yaml(big).data[0]["databases"][0]["tables"]) == 2001


def test_an_error_is_reported_as_without_the_prefetch(big: Path) -> None:
    big.write_text(_playbook(2000) + "- name: broken\n  hosts: [unclosed\n")
    with pytest.raises(ErpprovError) as inline:
        yamlsrc.parse_yaml(big.read_bytes(), str(big))
    yamlsrc.prefetch(big)
    assert _prefetched(big)
    with pytest.raises(ErpprovError) as prefetched:
        yamlsrc.load_yaml(big)
    assert (prefetched.value.message, prefetched.value.location) == (inline.value.message, inline.value.location)
    assert prefetched.value.location is not None and prefetched.value.location.line is not None


def test_small_files_and_threaded_callers_parse_in_process(tmp_path: Path, big: Path) -> None:
    small = tmp_path / "small.yaml"
    small.write_text(_playbook(3))
    yamlsrc.prefetch(small)
    assert not _prefetched(small)

    blocker = threading.Event()
    thread = threading.Thread(target=blocker.wait, args=(30,))
    thread.start()
    try:
        yamlsrc.prefetch(big)  # fork() with another thread running could copy a held lock
        assert not _prefetched(big)
    finally:
        blocker.set()
        thread.join()


def test_the_cli_loads_a_large_playbook_and_points_at_its_errors(tmp_path: Path, big: Path) -> None:
    (tmp_path / "inventory.yaml").write_text("all:\n  hosts:\n    db:\n")
    done = erpprov(tmp_path, "validate", "big.yaml")
    assert done.returncode == 0, done.stderr
    assert "big.yaml: valid (1 play, hosts: db)" in done.stdout

    base = big.read_text()
    big.write_text(base + "- name: more\n  hosts: all\n  rolez: []\n")
    line = base.count("\n") + 3
    done = erpprov(tmp_path, "validate", "big.yaml")
    assert done.returncode == 1
    assert f"big.yaml:{line}:3: unknown key 'rolez'" in done.stderr
