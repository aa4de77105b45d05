"""What every ``zkelect`` command shares: the connect string, errors, output.

The security options are declared once too, in security_options.py.

Conventions (DESIGN.md §5): errors are one line on stderr, never a traceback; exit code
2 for usage errors, 1 for operational failures (no quorum, no permission, timeout).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Annotated, Any

import typer

from zkelect._zookeeper.options import client_options
from zkelect._zookeeper.session import Session
from zkelect._zookeeper.tools import connected_session
from zkelect.config import MAX_SECONDS, validate_connect_string, validate_path
from zkelect.errors import ConfigurationError, ConnectionFailedError
from zkelect.security import ClientSecurity

__all__ = [
    "DEFAULT_HOSTS",
    "CandidateIdOption",
    "CliError",
    "GraceOption",
    "HostsOption",
    "JsonOption",
    "SessionTimeoutOption",
    "TimeoutOption",
    "UsageError",
    "connected_reader",
    "echo_json",
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
#: zkelect run's --grace; doctor takes it too, to say whether it holds.
GraceOption = Annotated[
    float,
    typer.Option(
        "--grace",
        min=0,
        max=MAX_SECONDS,
        help="Seconds between SIGTERM and SIGKILL to zkelect run's command when the candidate "
        "stops; after a loss it did not choose, the command is SIGKILLed by the time a "
        "successor could be elected, whatever --grace says.",
    ),
]
#: The candidate commands' (run, serve) id and session timeout.
CandidateIdOption = Annotated[
    str | None,
    typer.Option("--id", help="Candidate id shown to operators (default: hostname-pid)."),
]
SessionTimeoutOption = Annotated[
    float,
    typer.Option(
        "--session-timeout",
        min=0.1,
        max=MAX_SECONDS,
        help="ZooKeeper session timeout, seconds: how long a SIGKILLed or frozen leader "
        "keeps its node before a successor is elected.",
    ),
]


class CliError(Exception):
    """An operational failure: printed as one line, exit code 1."""

    exit_code = 1


class UsageError(CliError):
    """Bad arguments the parser could not catch: printed as one line, exit code 2."""

    exit_code = 2


def valid_path(path: str) -> str:
    """The election path, or a usage error naming what is wrong with it."""
    try:
        return validate_path(path)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


@contextmanager
def connected_reader(
    hosts: str, timeout: float = 10.0, security: ClientSecurity | None = None
) -> Iterator[Session]:
    """A session to read through (never acquired: no heartbeat), over a started and
    authenticated client that is stopped on exit; or a one-line error."""
    try:
        validate_connect_string(hosts)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    with ExitStack() as stack:
        try:
            session = stack.enter_context(
                connected_session(
                    hosts,
                    connect_timeout=timeout,
                    session_timeout=max(timeout, 4.0),
                    request_timeout=timeout,
                    client_options=client_options(security) if security is not None else None,
                    check_chroot=True,
                )
            )
        except ConnectionFailedError as exc:
            if type(exc) is not ConnectionFailedError:
                raise  # a TLSError says exactly what is wrong
            raise _no_quorum(hosts, timeout, security) from None
        yield session


def _no_quorum(
    hosts: str, timeout: float, security: ClientSecurity | None
) -> ConnectionFailedError:
    tls_hint = "" if security is not None and security.tls else "; TLS ports need --tls-ca"
    return ConnectionFailedError(
        f"no ZooKeeper quorum answered at {hosts} within {timeout:g}s (check --hosts / "
        f"ZKELECT_HOSTS and that a majority of members is up{tls_hint})"
    )


def echo_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, sort_keys=False) + "\n")
    sys.stdout.flush()
