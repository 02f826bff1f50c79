"""The parse cache (load/parsecache.py): a second load of an unchanged large file reads its values
back without parsing; a stale, corrupt, foreign-owned or writable-by-others entry is ignored;
nothing rendered (no secret) is kept; `--no-cache` turns it off."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from erpprov.errors import ErpprovError
from erpprov.load import parsecache, yamlsrc
from tests.helpers import erpprov, write_project

SECRET = "s3cret-from-the-environment"


def _big(name: str = "app") -> str:
    """A playbook past the cache's size threshold (and the prefetch's)."""
    rows = "".join(f"        - {{name: t{i:04d}, columns: [{{name: id, type: integer}}]}}\n" for i in range(1200))
    role = f"    - {{name: {name}, login: true, password: \"{{{{ env.APP_PW }}}}\"}}\n"
    return f"- name: big\n  hosts: dev\n  roles:\n{role}  databases:\n    - name: erp\n      tables:\n{rows}"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return parsecache.directory()


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.json")) if cache.is_dir() else []


def test_a_second_load_of_an_unchanged_file_reads_the_entry(tmp_path, cache, monkeypatch):
    path = tmp_path / "big.yaml"
    path.write_text(_big())
    first = yamlsrc.load_yaml(path)
    [entry] = _entries(cache)
    assert entry.stat().st_mode & 0o777 == 0o600 and cache.stat().st_mode & 0o777 == 0o700
    monkeypatch.setattr(yamlsrc, "parse_yaml", None)  # a parse now would fail
    second = yamlsrc.load_yaml(path)
    assert second.data == first.data
    assert second.locate((0, "databases", 0, "tables", 5)).line == 13  # positions still come from the text


def test_a_changed_file_is_parsed_again(tmp_path, cache):
    path = tmp_path / "big.yaml"
    path.write_text(_big())
    yamlsrc.load_yaml(path)
    path.write_text(_big(name="other"))
    assert yamlsrc.load_yaml(path).data[0]["roles"][0]["name"] == "other"
    assert len(_entries(cache)) == 2


@pytest.mark.parametrize("spoil", ["corrupt", "other_key", "world_writable", "group_writable", "foreign_owner",
                                   "writable_directory", "symlink"])
def test_an_untrustworthy_entry_is_ignored(tmp_path, cache, monkeypatch, spoil):
    path = tmp_path / "big.yaml"
    path.write_text(_big())
    yamlsrc.load_yaml(path)
    [entry] = _entries(cache)
    forged = json.loads(entry.read_text())
    forged["data"][0]["roles"][0]["name"] = "forged"
    if spoil == "corrupt":
        entry.write_text(entry.read_text()[:1000])
    elif spoil == "other_key":  # the values of other bytes, under this file's name
        entry.write_text(json.dumps({**forged, "key": "0" * 64}))
    else:
        entry.write_text(json.dumps(forged))
        if spoil == "world_writable":
            entry.chmod(0o602)
        elif spoil == "group_writable":
            entry.chmod(0o620)
        elif spoil == "foreign_owner":
            if os.geteuid() != 0:
                pytest.skip("only root can give a file away")
            os.chown(entry, 65534, -1)
        elif spoil == "writable_directory":
            cache.chmod(0o777)
        elif spoil == "symlink":
            elsewhere = tmp_path / "elsewhere.json"
            entry.rename(elsewhere)
            entry.symlink_to(elsewhere)
    assert yamlsrc.load_yaml(path).data[0]["roles"][0]["name"] == "app"
    if spoil not in ("foreign_owner", "writable_directory"):  # the entry is written anew
        yamlsrc.load_yaml(path)
        assert yamlsrc.load_yaml(path).data[0]["roles"][0]["name"] == "app"


def test_the_entry_holds_the_files_values_and_no_rendered_secret(tmp_path, cache, monkeypatch):
    monkeypatch.setenv("APP_PW", SECRET)
    root = write_project(tmp_path / "p", _big())
    from erpprov.load.project import load_project

    project = load_project(root / "playbooks/dev.yaml", root / "inventory.yaml")
    assert project.targets[0].play.roles[0].password.get_secret_value() == SECRET
    project = load_project(root / "playbooks/dev.yaml", root / "inventory.yaml")  # from the entry
    assert project.targets[0].play.roles[0].password.get_secret_value() == SECRET
    [entry] = _entries(cache)
    assert SECRET not in entry.read_text() and "{{ env.APP_PW }}" in entry.read_text()


def test_only_the_newest_entries_are_kept(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(parsecache, "KEEP", 3)
    path = tmp_path / "big.yaml"
    for name in ("a", "b", "c", "d", "e"):  # five edits of one playbook
        path.write_text(_big(name=name))
        yamlsrc.load_yaml(path)
    assert len(_entries(cache)) == 3
    assert yamlsrc.load_yaml(path).data[0]["roles"][0]["name"] == "e"
    assert parsecache.get(path.read_bytes())[0]


def test_documents_json_would_change_are_not_kept(tmp_path, cache):
    filler = "".join(f"k{i}: {i}\n" for i in range(9000))
    for text in (filler + "1: an integer key\n", filler + "a: &a [1]\nb: *a\n", "k: v\n"):
        path = tmp_path / "doc.yaml"
        path.write_text(text)
        yamlsrc.load_yaml(path)
    assert _entries(cache) == []  # an int key, an alias, a small file


def test_no_cache_reads_and_writes_nothing(tmp_path):
    root = write_project(tmp_path / "p", _big())
    home = tmp_path / "home"
    out = erpprov(root, "validate", "--no-cache", env={"XDG_CACHE_HOME": str(home), "APP_PW": "x"})
    assert out.returncode == 0, out.stderr
    assert not home.exists()
    out = erpprov(root, "validate", env={"XDG_CACHE_HOME": str(home), "APP_PW": "x"})
    assert out.returncode == 0, out.stderr
    assert len(list(home.glob("erpprov/yaml/*.json"))) == 1


def test_a_cached_playbook_still_reports_its_errors_with_positions(tmp_path, cache):
    root = write_project(tmp_path / "p", _big().replace("login: true", "login: maybe"))
    from erpprov.load.project import load_project

    for _ in range(2):  # parsed, then from the entry
        with pytest.raises(ErpprovError) as err:
            load_project(root / "playbooks/dev.yaml", root / "inventory.yaml")
        assert err.value.location is not None and err.value.location.line == 4
    assert len(_entries(cache)) == 1
