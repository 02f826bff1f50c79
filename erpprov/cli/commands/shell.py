"""`completion`: the shell's tab completion, from click's own completion machinery."""

from __future__ import annotations

import click

# The variable the `erpprov` entry point reads to answer a completion request (click derives it
# from the program name); the scripts click writes set it when the shell asks.
COMPLETE_VAR = "_ERPPROV_COMPLETE"


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the tab-completion script for SHELL.

    \b
    bash: eval "$(erpprov completion bash)"    (in ~/.bashrc)
    zsh:  eval "$(erpprov completion zsh)"     (in ~/.zshrc)
    fish: erpprov completion fish > ~/.config/fish/completions/erpprov.fish
    """
    from click.shell_completion import get_completion_class

    root = click.get_current_context().find_root().command
    completer = get_completion_class(shell)
    assert completer is not None  # click.Choice admits only the shells click knows
    click.echo(completer(root, {}, "erpprov", COMPLETE_VAR).source())
