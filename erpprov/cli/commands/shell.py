"""`completion`: the shell's tab completion, from click's own completion machinery."""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem, FishComplete, add_completion_class, get_completion_class

# The variable the `erpprov` entry point reads to answer a completion request (click derives it
# from the program name); the scripts click writes set it when the shell asks.
COMPLETE_VAR = "_ERPPROV_COMPLETE"

# One line per candidate, its fields split by a tab. Fish splits a command substitution into lines,
# so click 8.4's answer of three lines per candidate, split again "on \n" by a script in which that
# \n became a real line break, gives fish no candidate at all.
_FISH_SOURCE = """\
function %(complete_func)s;
    set -l response (env %(complete_var)s=fish_complete COMP_WORDS=(commandline -cp) \
COMP_CWORD=(commandline -t) %(prog_name)s);

    for completion in $response;
        set -l metadata (string split \\t -- $completion);

        if test "$metadata[1]" = "dir";
            __fish_complete_directories $metadata[2];
        else if test "$metadata[1]" = "file";
            __fish_complete_path $metadata[2];
        else if test "$metadata[1]" = "plain";
            if test "$metadata[3]" != "_";
                printf '%%s\\t%%s\\n' $metadata[2] $metadata[3];
            else;
                echo $metadata[2];
            end;
        end;
    end;
end;

complete --no-files --command %(prog_name)s --arguments "(%(complete_func)s)";
"""


class _FishComplete(FishComplete):
    source_template = _FISH_SOURCE

    def format_completion(self, item: CompletionItem) -> str:
        def field(text: str) -> str:
            return " ".join(text.split("\n")).replace("\t", " ")

        return f"{item.type}\t{field(item.value)}\t{field(item.help or '_')}"


add_completion_class(_FishComplete, "fish")


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the tab-completion script for SHELL.

    \b
    bash: eval "$(erpprov completion bash)"    (in ~/.bashrc)
    zsh:  eval "$(erpprov completion zsh)"     (in ~/.zshrc)
    fish: erpprov completion fish > ~/.config/fish/completions/erpprov.fish
    """
    root = click.get_current_context().find_root().command
    completer = get_completion_class(shell)
    assert completer is not None  # click.Choice admits only the shells click knows
    click.echo(completer(root, {}, "erpprov", COMPLETE_VAR).source())
