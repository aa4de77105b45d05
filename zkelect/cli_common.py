"""What every ``zkelect`` command shares: the connect string, errors, output.

Conventions (DESIGN.md §5): errors are one line on stderr, never a traceback; exit code
2 for usage errors, 1 for operational failures (no quorum, no permission, timeout).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError

from .config import MAX_SECONDS, validate_connect_string, validate_path
from .errors import ChrootMissingError, ConfigurationError, ConnectionFailedError

__all__ = [
    "DEFAULT_HOSTS",
    "CliError",
    "HostsOption",
    "JsonOption",
    "TimeoutOption",
    "UsageError",
    "connected_client",
    "echo_json",
    "fail",
    "valid_path",
]

DEFAULT_HOSTS = "127.0.0.1:2181"

HostsOption = Annotated[
    str,
    typer.Option(
        "--hosts",
        envvar="ZKELECT_HOSTS",
        help="ZooKeeper connect string 'h1:2181,h2:2181', optionally ending in /chroot "
        "(env ZKELECT_HOSTS).",
        show_default=True,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=0.1,
        max=MAX_SECONDS,
        help="Seconds to wait for ZooKeeper before giving up.",
    ),
]


class CliError(Exception):
    """An operational failure: printed as one line, exit code 1."""

    exit_code = 1


class UsageError(CliError):
    """Bad arguments the parser could not catch: printed as one line, exit code 2."""

    exit_code = 2


def fail(message: str, *, usage: bool = False) -> NoReturn:
    raise UsageError(message) if usage else CliError(message)


def valid_path(path: str) -> str:
    """The election path, or a usage error naming what is wrong with it."""
    try:
        return validate_path(path)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


@contextmanager
def connected_client(hosts: str, timeout: float = 10.0) -> Iterator[KazooClient]:
    """A started KazooClient (stopped on exit), or a one-line error."""
    try:
        validate_connect_string(hosts)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    client = KazooClient(hosts=hosts, timeout=max(timeout, 4.0))
    try:
        client.start(timeout=timeout)
    except KazooTimeoutError:
        client.close()
        raise ConnectionFailedError(
            f"no ZooKeeper quorum answered at {hosts} within {timeout:g}s "
            "(check --hosts / ZKELECT_HOSTS and that a majority of members is up)"
        ) from None
    try:
        if client.chroot and client.exists("/") is None:
            raise ChrootMissingError(f"the chroot {client.chroot} does not exist on {hosts}")
        yield client
    finally:
        client.stop()
        client.close()


def echo_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, sort_keys=False) + "\n")
    sys.stdout.flush()
