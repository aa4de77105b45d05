"""What every ``zkelect`` command shares: the connect string, errors, output.

The security options are declared once too, in security_options.py.

Conventions (DESIGN.md §5): errors are one line on stderr, never a traceback; exit code
2 for usage errors, 1 for operational failures (no quorum, no permission, timeout).
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Annotated, Any

import typer

from zkelect._zookeeper.options import client_options
from zkelect._zookeeper.session import Session
from zkelect._zookeeper.tools import connected_session
from zkelect.config import (
    MAX_SECONDS,
    validate_candidate_id,
    validate_connect_string,
    validate_path,
)
from zkelect.errors import ConfigurationError, ConnectionFailedError
from zkelect.ops.cli.ensemble_state import running_ensemble
from zkelect.security import ClientSecurity

__all__ = [
    "DEFAULT_HOSTS",
    "CandidateIdOption",
    "CliError",
    "GraceOption",
    "HostsOption",
    "JsonOption",
    "LogFormat",
    "LogFormatOption",
    "SessionTimeoutOption",
    "TimeoutOption",
    "UsageError",
    "VerboseOption",
    "connected_reader",
    "echo_json",
    "given_hosts",
    "valid_path",
]

DEFAULT_HOSTS = "127.0.0.1:2181"


def given_hosts(ctx: typer.Context, param: typer.CallbackParam, value: str) -> str:
    """--hosts as the command will use it: checked, and when neither --hosts nor
    ZKELECT_HOSTS says, the dev ensemble ``zkelect ensemble up`` runs (found by its state
    file, said in one line on stderr), else 127.0.0.1:2181. The one place every command
    decides which ZooKeeper to talk to."""
    if ctx.resilient_parsing:  # shell completion: no notes, no checks
        return value
    source = ctx.get_parameter_source(str(param.name))
    if source is None or source.name == "DEFAULT":
        found = running_ensemble()
        if found is not None:
            directory, hosts = found
            sys.stderr.write(
                f"zkelect: note: using the dev ensemble at {hosts} in {directory} (zkelect "
                "ensemble up); pass --hosts to choose\n"
            )
            return hosts
        return value
    try:
        return validate_connect_string(value)
    except ConfigurationError as exc:
        raise _bad(ctx, param, str(exc)) from None


def _given_id(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """--id checked as the election will check it, in the option's words."""
    if value is None or ctx.resilient_parsing:
        return value
    try:
        validate_candidate_id(value)
    except ConfigurationError as exc:
        raise _bad(ctx, param, str(exc).removeprefix("candidate_id ")) from None
    return value


def _bad(ctx: typer.Context, param: typer.CallbackParam, message: str) -> typer.BadParameter:
    """A bad value, naming the option and, only when the value came from there, its
    environment variable."""
    flag = f"'{param.opts[0]}'" if param.opts else None
    source = ctx.get_parameter_source(str(param.name))
    if flag is not None and source is not None and source.name == "ENVIRONMENT":
        flag = f"{flag} (env var: '{param.envvar}')"
    return typer.BadParameter(message, ctx=ctx, param_hint=flag)


HostsOption = Annotated[
    str,
    typer.Option(
        "--hosts",
        envvar="ZKELECT_HOSTS",
        callback=given_hosts,
        help="ZooKeeper connect string 'h1:2181,h2:2181', optionally ending in /chroot. "
        "Neither this nor ZKELECT_HOSTS given: the dev ensemble 'zkelect ensemble up' "
        "runs, if any, else 127.0.0.1:2181.",
        show_default=False,
        show_envvar=True,  # as etcdctl and Patroni show theirs
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        envvar="ZKELECT_TIMEOUT",
        min=0.1,
        max=MAX_SECONDS,
        help="Seconds to wait for ZooKeeper before giving up.",
        show_envvar=True,
    ),
]
#: zkelect run's --grace; doctor takes it too, to say whether it holds.
GraceOption = Annotated[
    float,
    typer.Option(
        "--grace",
        envvar="ZKELECT_GRACE",
        min=0,
        max=MAX_SECONDS,
        help="Seconds between SIGTERM and SIGKILL to zkelect run's command when the candidate "
        "stops; after a loss it did not choose, the command is SIGKILLed by the time a "
        "successor could be elected, whatever --grace says.",
        show_envvar=True,
    ),
]
#: The candidate commands' (run, serve) id and session timeout.
CandidateIdOption = Annotated[
    str | None,
    typer.Option(
        "--id",
        envvar="ZKELECT_ID",
        callback=_given_id,
        help="Candidate id shown to operators (default: hostname-pid).",
        show_envvar=True,
    ),
]
SessionTimeoutOption = Annotated[
    float,
    typer.Option(
        "--session-timeout",
        envvar="ZKELECT_SESSION_TIMEOUT",
        min=0.1,
        max=MAX_SECONDS,
        help="ZooKeeper session timeout, seconds: how long a SIGKILLed or frozen leader "
        "keeps its node before a successor is elected.",
        show_envvar=True,
    ),
]


class LogFormat(str, enum.Enum):
    """``--log-format`` of the commands that run for long (run, serve, exporter)."""

    TEXT = "text"
    JSON = "json"


#: run and serve: how much of kazoo's log to add (zkelect/ops/logs.py ``configure``).
VerboseOption = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        envvar="ZKELECT_VERBOSE",
        help="-v: also zkelect's debug lines and kazoo's connection attempts; -vv: also "
        "kazoo's wire log (passwords redacted). Default: every lifecycle event, no kazoo. "
        "The variable takes the count (1 or 2).",
    ),
]
LogFormatOption = Annotated[
    LogFormat,
    typer.Option(
        "--log-format",
        case_sensitive=False,
        envvar="ZKELECT_LOG_FORMAT",
        help="'text': timestamped lines; 'json': one object per line (time, level, election, "
        "candidate, event, epoch, session, reason, message...). See docs/logging.md.",
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
