"""`erpprov --version` and `erpprov completion SHELL`: the scripts are run by the real shell, which
asks the real `erpprov` for its candidates, as a user's tab key does."""

from __future__ import annotations

import re
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


# zsh's completion widgets only run inside its line editor: stand-ins print what the script hands them.
_ZSH_STANDINS = """
compdef() { : }
_describe() { print -rl -- ${(P)3} }
compadd() { print -rl -- ${(P)${@[-1]}} }
_path_files() { print -r -- "files $*" }
"""


def _offered_by(shell: str, words: list[str], environ: dict[str, str]) -> str:
    script = subprocess.run(["erpprov", "completion", shell], env=environ, capture_output=True, text=True,
                            timeout=60, check=True).stdout
    if shell == "fish":
        line = " ".join(words)
        command = ["fish", "--no-config", "-c", f"{script}\ncomplete -C '{line}'\n"]
    else:
        quoted = " ".join(f"'{w}'" for w in words)
        probe = f"{_ZSH_STANDINS}\n{script}\nwords=({quoted}); CURRENT={len(words)}\n_erpprov_completion\n"
        command = ["zsh", "-f", "-c", probe]
    done = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr, done
    return done.stdout


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_complete_commands_options_and_choices(tmp_path: Path, shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    environ = erpprov_on_path(tmp_path / "bin")
    commands = _offered_by(shell, ["erpprov", "pl"], environ)
    assert _names(commands) == {"plan"} and "Show what `apply` would change" in commands, commands
    assert {"--format", "--forks"} == _names(_offered_by(shell, ["erpprov", "plan", "--for"], environ))
    assert _names(_offered_by(shell, ["erpprov", "completion", ""], environ)) == {"bash", "zsh", "fish"}


def _names(offered: str) -> set[str]:
    """The candidates, without their descriptions (fish: after a tab; zsh's _describe: after a colon)."""
    return {re.split(r"[\t:]", line)[0] for line in offered.splitlines() if line}


def test_unknown_shell_is_refused(tmp_path: Path) -> None:
    run = erpprov(tmp_path, "completion", "tcsh")
    assert run.returncode == 2 and "tcsh" in run.stderr, str(run)
