"""``zkelect exporter``: runs zkelect.ops.exporter (Prometheus metrics for the leader of every
observed election path, read-only) in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import threading
from typing import Annotated

import typer

from zkelect._zookeeper.options import client_options
from zkelect.config import MAX_SECONDS
from zkelect.ops import exporter as _exporter
from zkelect.ops.cli.common import (
    DEFAULT_HOSTS,
    HostsOption,
    LogFormat,
    LogFormatOption,
    UsageError,
    valid_path,
)
from zkelect.ops.cli.inspect import IDLE_WAKE, StopSignals
from zkelect.ops.cli.security_options import with_security
from zkelect.ops.logs import configure, secrets_of
from zkelect.security import ClientSecurity

__all__ = ["app"]

app = typer.Typer()

_EXPORTER_HELP = (
    "Export the leaders of election paths as Prometheus metrics, read-only.\n\n"
    "Serves http://BIND:PORT/metrics for zkelect, Curator and kazoo elections until "
    "SIGINT/SIGTERM, and prints 'listening on URL' once serving. See docs/exporter.md for "
    "the metrics."
)


# -- exporter ----------------------------------------------------------------------------------

_Paths = Annotated[
    list[str],
    typer.Option(
        "--path",
        envvar="ZKELECT_EXPORTER_PATHS",
        show_envvar=True,
        help="An election path to observe (repeat for more; in the environment variable, "
        "separated by blanks).",
        show_default=False,
    ),
]
_Port = Annotated[
    int,
    typer.Option(
        "--port",
        envvar="ZKELECT_EXPORTER_PORT",
        show_envvar=True,
        min=0,
        max=65535,
        help="HTTP port for /metrics (0: any).",
    ),
]
_Bind = Annotated[
    str,
    typer.Option(
        "--bind", envvar="ZKELECT_EXPORTER_BIND", show_envvar=True, help="Address to serve on."
    ),
]
_RefreshInterval = Annotated[
    float,
    typer.Option(
        "--refresh-interval",
        envvar="ZKELECT_REFRESH_INTERVAL",
        show_envvar=True,
        min=0.1,
        max=MAX_SECONDS,
        help="Seconds between re-reads without watches.",
    ),
]
_SessionTimeout = Annotated[
    float,
    typer.Option(
        "--session-timeout",
        envvar="ZKELECT_SESSION_TIMEOUT",
        show_envvar=True,
        min=0.1,
        max=MAX_SECONDS,
        help="ZooKeeper session timeout.",
    ),
]
_LogLevel = Annotated[
    str,
    typer.Option(
        "--log-level",
        envvar="ZKELECT_LOG_LEVEL",
        show_envvar=True,
        help="debug, info, warning or error.",
    ),
]
# --connect-timeout: the name the exporter's own command line had (docs/exporter.md).
_ConnectTimeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        "--connect-timeout",
        envvar="ZKELECT_TIMEOUT",
        show_envvar=True,
        min=0.1,
        max=MAX_SECONDS,
        help="Seconds to wait for ZooKeeper before giving up.",
    ),
]


def _paths(values: list[str]) -> list[str]:
    return [valid_path(p) for p in values]


@app.command("exporter", help=_EXPORTER_HELP)
@with_security
def exporter(
    paths: _Paths,
    hosts: HostsOption = DEFAULT_HOSTS,
    port: _Port = 8090,
    bind: _Bind = "127.0.0.1",
    refresh_interval: _RefreshInterval = _exporter.DEFAULT_REFRESH_INTERVAL,
    timeout: _ConnectTimeout = 15.0,
    session_timeout: _SessionTimeout = 10.0,
    log_level: _LogLevel = "warning",
    log_format: LogFormatOption = LogFormat.TEXT,
    *,
    security: ClientSecurity,
) -> None:
    checked = _paths(paths)
    level = getattr(logging, log_level.upper(), None)
    if log_level.lower() not in ("debug", "info", "warning", "error") or not isinstance(level, int):
        raise UsageError(f"--log-level must be debug, info, warning or error; got {log_level!r}")
    # Timestamped text or JSON lines, no secret in any (docs/logging.md); --log-level then
    # says how much of the exporter's own lines (and at debug, kazoo's) to show.
    configure(
        log_format=log_format.value,
        verbosity=2 if level <= logging.DEBUG else 0,
        prefix="zkelect exporter",
        secrets=secrets_of(security),
    )
    logging.getLogger("zkelect").setLevel(level)
    stop = threading.Event()
    # run() waits on ``stop``; a signal handler must not take its lock, so a helper thread
    # turns the handler's flag into stop.set().
    with StopSignals() as stopper:
        relay = threading.Thread(
            target=_relay, args=(stopper, stop), name="zkelect-exporter-stop", daemon=True
        )
        relay.start()
        code = _exporter.run(
            hosts,
            checked,
            port,
            bind=bind,
            refresh_interval=refresh_interval,
            connect_timeout=timeout,
            session_timeout=session_timeout,
            stop=stop,
            client_options=client_options(security),
        )
        stop.set()
    if code:
        raise typer.Exit(code)


def _relay(stopper: StopSignals, stop: threading.Event) -> None:
    while not stopper.requested and not stop.wait(IDLE_WAKE):
        pass
    stop.set()
