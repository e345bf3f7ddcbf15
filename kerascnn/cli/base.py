"""The command line's own click classes: one ``Error:`` line for a user's mistake, and a group
whose commands are imported only when they run. Imports no TensorFlow."""

from __future__ import annotations

import importlib
import sys

import click

import kerascnn
from kerascnn.errors import KerasCNNError

USER_ERROR = 2
# Raised for a group invoked without a command (click 8.2+).
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


class OneLineErrors:
    """Click mixin: usage errors and ``KerasCNNError`` become one ``Error:`` line, exit 2."""

    def main(self, args=None, prog_name=None, **extra):
        try:
            result = super().main(args, prog_name=prog_name, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        except NO_ARGS_IS_HELP as error:  # `kerascnn` alone: show the help, as click would
            click.echo(error.ctx.get_help())
            sys.exit(0)
        except (click.ClickException, KerasCNNError) as error:
            message = error.format_message() if isinstance(error, click.ClickException) else error
            message = " ".join(str(message).split())
            click.echo(f"Error: {message}", err=True)
            sys.exit(USER_ERROR)
        sys.exit(result if isinstance(result, int) else 0)


class Group(OneLineErrors, click.Group):
    pass


class Command(OneLineErrors, click.Command):
    pass


class LazyGroup(Group):
    """A group whose commands live in modules of ``kerascnn.cli``, imported when a command
    runs, so that the group's help (from ``commands``: name -> (module, one-line help)) and
    the commands that need no TensorFlow start at once. A module listed in ``light`` needs
    none; before any other, the package is loaded with TensorFlow's start-up lines captured."""

    def __init__(self, *args, commands: dict[str, tuple[str, str]], light=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy, self.light = commands, set(light)

    def list_commands(self, ctx):
        return list(self.lazy)

    def get_command(self, ctx, name):
        if name not in self.lazy:
            return None
        module = self.lazy[name][0]
        if module not in self.light:
            kerascnn.load()
        commands = importlib.import_module(f"kerascnn.cli.{module}")
        return getattr(commands, name.replace("-", "_"))

    def format_commands(self, ctx, formatter):
        width = formatter.width - 6 - max(len(name) for name in self.lazy)
        rows = [
            (name, click.utils.make_default_short_help(short, width))
            for name, (_, short) in self.lazy.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
