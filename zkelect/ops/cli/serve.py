"""``zkelect serve``: one candidate that serves /livez, /readyz, /healthz, /leader and /metrics.

What the compose stack and the observability tests run: a candidate whose only work is to be
seen (zkelect.ops.http.StatusServer answers the probes; docs/observability.md). To run a
command while leading, with the same endpoints, use ``zkelect run --http-port``.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated

import typer

from zkelect._election.election import Election
from zkelect._election.nodes import LeaderInfo
from zkelect.config import ElectionConfig
from zkelect.errors import ZkElectError
from zkelect.metrics import PrometheusRecorder
from zkelect.ops.cli.common import (
    DEFAULT_HOSTS,
    CandidateIdOption,
    CliError,
    HostsOption,
    LogFormat,
    LogFormatOption,
    SessionTimeoutOption,
    VerboseOption,
    valid_path,
)
from zkelect.ops.cli.security_options import with_candidate_security
from zkelect.ops.http import StatusServer
from zkelect.ops.logs import configure, secrets_of
from zkelect.security import ClientSecurity

__all__ = ["app"]

app = typer.Typer()

_HELP = (
    "Run one candidate of the election at --path and serve /livez, /readyz, /healthz, "
    "/leader and /metrics until SIGTERM or SIGINT.\n\n"
    "Prints 'listening on URL' once the candidate has joined. /leader answers 200 only "
    "while this candidate leads with a valid lease (503 otherwise, naming the leader it "
    "observes); /readyz (and /healthz) 200 while its session is connected and a quorum "
    "answered within the lease; /livez 200 while the process and its loops run. On "
    "SIGTERM/SIGINT it leaves the election first (a successor is elected while it shuts "
    "down), then exits 0. Exit 1 when ZooKeeper cannot be reached or the port cannot be "
    "bound. See docs/observability.md."
)
_STOP_POLL = 0.2  # seconds between looks at the stop flag

_PathOption = Annotated[
    str,
    typer.Option(
        "--path",
        envvar="ZKELECT_PATH",
        show_envvar=True,
        help="Election path, e.g. /elections/demo.",
        show_default=False,
    ),
]
_Port = Annotated[
    int,
    typer.Option(
        "--port",
        envvar="ZKELECT_HTTP_PORT",
        show_envvar=True,
        min=0,
        max=65535,
        help="HTTP port (0: any free port).",
    ),
]
_Bind = Annotated[
    str,
    typer.Option(
        "--bind", envvar="ZKELECT_HTTP_BIND", show_envvar=True, help="Address to listen on."
    ),
]


@app.command("serve", help=_HELP)
@with_candidate_security
def serve(
    path: _PathOption,
    candidate_id: CandidateIdOption = None,
    hosts: HostsOption = DEFAULT_HOSTS,
    port: _Port = 0,
    bind: _Bind = "127.0.0.1",
    session_timeout: SessionTimeoutOption = 10.0,
    verbose: VerboseOption = 0,
    log_format: LogFormatOption = LogFormat.TEXT,
    *,
    security: ClientSecurity,
) -> None:
    path = valid_path(path)
    with _stop_signals() as stop:
        election = Election(  # a ConfigurationError (bad --hosts...) is a usage error
            hosts,
            path,
            candidate_id=candidate_id,
            config=ElectionConfig(session_timeout=session_timeout),
            metrics=PrometheusRecorder(),
            # Observing the leader (one more watch, on its node) lets a follower's /leader
            # name it from memory: probes never send a request.
            on_leader_change=_ignore,
            **security.election_kwargs(),
        )
        candidate = election.candidate_id
        configure(  # timestamped lines, every lifecycle event, no secrets (docs/logging.md)
            log_format=log_format.value,
            verbosity=verbose,
            prefix=f"zkelect serve {candidate}",
            context={"election": path, "candidate": candidate},
            secrets=secrets_of(security),
        )
        server = StatusServer(bind, port, elections=[election])
        try:
            server.start()
        except OSError as exc:
            raise CliError(f"cannot listen on {bind}:{port}: {exc}") from None
        try:
            try:
                election.start()
            except ZkElectError as exc:
                raise CliError(str(exc)) from None
            typer.echo(f"listening on {server.url}")
            while not stop["requested"]:
                time.sleep(_STOP_POLL)
            election.stop()  # resign first, so a successor is elected while we shut down
        finally:
            server.stop()


def _ignore(info: LeaderInfo | None) -> None:
    pass


@contextmanager
def _stop_signals() -> Iterator[dict[str, bool]]:
    """SIGTERM and SIGINT set ``["requested"]``: a flag, because a handler must not take a
    lock the main thread may hold (an Event's)."""
    stop = {"requested": False}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop["requested"] = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
