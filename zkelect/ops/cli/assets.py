"""``zkelect assets DIR``: write out the Prometheus alert rules, their unit tests and the
Grafana dashboard that ship inside the package (zkelect/ops/assets/), for users who
pip-installed zkelect and have no checkout.

The packaged files are the only copy: the compose stack mounts them from the package directory
and the tests read them there, so what a user writes out is what was tested. Existing files are
never overwritten without ``--force``, and nothing is written unless every file can be.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from zkelect.ops.cli.common import CliError, UsageError

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; importlib.abc's goes in 3.14
    from importlib.abc import Traversable

__all__ = ["ASSET_FILES", "app", "asset_files", "write_assets"]

app = typer.Typer()

#: The files ``zkelect assets`` writes, in zkelect/ops/assets/.
ASSET_FILES: tuple[str, ...] = (
    "zkelect.rules.yml",  # the alerting rules (docs/alerts.md)
    "zkelect.rules.test.yml",  # their unit tests: promtool test rules zkelect.rules.test.yml
    "zkelect.json",  # the Grafana dashboard (docs/observability.md)
)


def asset_files() -> dict[str, Traversable]:
    """The packaged files by name (in a wheel or in a checkout alike)."""
    folder = importlib.resources.files("zkelect.ops").joinpath("assets")
    return {name: folder.joinpath(name) for name in ASSET_FILES}


def write_assets(directory: Path, *, force: bool = False) -> list[Path]:
    """Write every asset into ``directory`` (created if missing); the paths written.
    Raises CliError, naming the file, before writing anything if one cannot be written."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"DIR {directory} exists and is not a directory")
    sources = asset_files()
    targets = [directory / name for name in sources]
    existing = [str(path) for path in targets if path.exists() or path.is_symlink()]
    if existing and not force:
        raise CliError(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}: "
            "pass --force to overwrite"
        )
    try:
        contents = [source.read_bytes() for source in sources.values()]
    except OSError as exc:  # a broken installation
        raise CliError(f"cannot read the packaged assets: {exc.strerror or exc}") from None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for target, content in zip(targets, contents, strict=True):
            target.write_bytes(content)
    except OSError as exc:
        where = exc.filename or directory
        raise CliError(f"cannot write {where}: {exc.strerror or exc}") from None
    return targets


@app.command("assets")
def assets(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Where to write the files (created if missing).")
    ],
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
) -> None:
    """Write the Prometheus alert rules (zkelect.rules.yml), their promtool unit tests and
    the Grafana dashboard (zkelect.json) that ship with zkelect into DIR."""
    for path in write_assets(directory, force=force):
        typer.echo(str(path))
