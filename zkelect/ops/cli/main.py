"""The ``zkelect`` command: operators and scripts drive elections from a shell.

Commands live in small modules beside this one (each a Typer app merged into this one): run
and demo in run.py; serve in serve.py; status, watch and resign in inspect.py; switchover in
switchover.py; exporter in exporter.py; ensemble in ensemble.py; doctor in doctor.py. Their
security options are declared once, in security_options.py. This module owns the entry point
and the error conventions: one line on stderr, exit 2 for usage errors, 1 for operational
failures, never a traceback.

Every zkelect program runs through here, the processes zkelect starts itself too (the
demo's workers, the ensemble's keeper: hidden commands), as ``zkelect ...`` or
``python -m zkelect.ops.cli.main ...``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

try:  # typer >= 0.20 vendors click; older releases use the click package
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_errors  # type: ignore[no-redef,import-not-found,unused-ignore]

from zkelect._version import __version__
from zkelect._zookeeper.connect import command_line_audience
from zkelect.errors import ConfigurationError, ZkElectError
from zkelect.ops.cli import (
    assets,
    doctor,
    ensemble,
    exporter,
    inspect,
    run,
    serve,
    switchover,
)
from zkelect.ops.cli.common import CliError
from zkelect.ops.cli.run import RUN_USAGE

__all__ = ["app", "main"]

app = typer.Typer(
    name="zkelect",
    help="Leader election on Apache ZooKeeper: run a command on exactly one host, see and "
    "change who leads, check a deployment, try it all locally.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"zkelect {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """zkelect: leader election on Apache ZooKeeper."""


for _commands in (run, serve, inspect, switchover, exporter, ensemble, doctor, assets):
    app.add_typer(_commands.app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (errors are one line on stderr)."""
    args = sys.argv[1:] if argv is None else list(argv)
    with command_line_audience():  # connection errors name our flags, and come at once
        return _run(args)


def _run(args: list[str]) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="zkelect", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("zkelect: interrupted\n")
        return 130
    except click_errors.UsageError as exc:
        sys.stderr.write(f"zkelect: {_usage_message(exc, args)}\n")
        return 2
    except click_errors.ClickException as exc:
        sys.stderr.write(f"zkelect: {exc.format_message()}\n")
        return int(exc.exit_code)
    except CliError as exc:
        sys.stderr.write(f"zkelect: {exc}\n")
        return exc.exit_code
    except ConfigurationError as exc:
        sys.stderr.write(f"zkelect: {exc}\n")
        return 2
    except ZkElectError as exc:
        sys.stderr.write(f"zkelect: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("zkelect: interrupted\n")
        return 130
    return int(result) if isinstance(result, int) else 0


def _usage_message(exc: click_errors.UsageError, args: list[str]) -> str:
    """One line: what is wrong, a hint where the parser's own words mislead, and where to
    find help."""
    ctx = exc.ctx
    path = ctx.command_path.split(" ", 1)[1] if ctx is not None and " " in ctx.command_path else ""
    hint = f" (try 'zkelect {path} --help')" if path else " (try 'zkelect --help')"
    if isinstance(exc, click_errors.NoArgsIsHelpError) and ctx is not None:
        # The help went to stdout already; its message is empty (rich prints it itself).
        return f"missing command: one of {', '.join(_subcommands(ctx.command))}{hint}"
    message = exc.format_message()
    if (
        isinstance(exc, click_errors.NoSuchOption)
        and ctx is not None
        and ctx.info_name == "run"
        and "--" not in args
    ):  # `zkelect run /x ls -la`: the command's own options were read as ours
        return f"{message}: put the command after '--': {RUN_USAGE}"
    return f"{message}{hint}"


def _subcommands(command: object) -> list[str]:
    """The visible subcommands of a group, in the order its help lists them."""
    commands = getattr(command, "commands", {})
    return [name for name, sub in commands.items() if not getattr(sub, "hidden", False)]


def entry_point() -> None:
    """The console script ``zkelect``."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
