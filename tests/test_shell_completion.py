"""`erpprov --version` and `erpprov completion SHELL`: the scripts are run by the real shell, which
asks the real `erpprov` for its candidates, as a user's tab key does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from erpprov import __version__
from tests.helpers import erpprov, erpprov_on_path


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    run = erpprov(tmp_path, "--version")
    assert run.returncode == 0, str(run)
    assert run.stdout.strip() == f"erpprov, version {__version__}"


@pytest.mark.parametrize(("words", "expected", "absent"), [
    (["erpprov", "pl"], {"plan"}, {"apply"}),
    (["erpprov", "plan", "--for"], {"--format", "--forks"}, {"--sql"}),
    (["erpprov", "completion", ""], {"bash", "zsh", "fish"}, set()),
])
def test_bash_completes_commands_options_and_choices(tmp_path: Path, words: list[str], expected: set[str],
                                                    absent: set[str]) -> None:
    environ = erpprov_on_path(tmp_path / "bin")
    script = subprocess.run(["erpprov", "completion", "bash"], env=environ, capture_output=True, text=True,
                            timeout=60, check=True).stdout
    quoted = " ".join(f"'{w}'" for w in words)
    probe = (f"{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
             "_erpprov_completion erpprov\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    out = subprocess.run(["bash", "--norc", "--noprofile", "-c", probe], env=environ, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    offered = set(out.stdout.split())
    assert expected <= offered, out
    assert not absent & offered, out


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_name_the_program_and_parse(tmp_path: Path, shell: str) -> None:
    run = erpprov(tmp_path, "completion", shell)
    assert run.returncode == 0, str(run)
    assert "_ERPPROV_COMPLETE" in run.stdout and "erpprov" in run.stdout
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed: only the script's text is checked")
    check = [shell, "-n"] if shell == "zsh" else [shell, "--no-execute"]
    parsed = subprocess.run(check, input=run.stdout, capture_output=True, text=True, timeout=60)
    assert parsed.returncode == 0, parsed.stderr


def test_unknown_shell_is_refused(tmp_path: Path) -> None:
    run = erpprov(tmp_path, "completion", "tcsh")
    assert run.returncode == 2 and "tcsh" in run.stderr, str(run)
