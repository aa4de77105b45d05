"""``zkelect run`` (run a command only while leader) and ``zkelect demo`` (the guided demo).

The logic lives in supervisor.py and demo.py; this module only parses arguments and maps
them onto those. See docs/cli-run.md. ``zkelect demo-worker`` (hidden) is the program the
demo's candidates run while they lead.
"""

from __future__ import annotations

from typing import Annotated

import typer

from zkelect.config import MAX_SECONDS, default_candidate_id
from zkelect.errors import ConfigurationError, ZkElectError
from zkelect.ops._child import command_problem
from zkelect.ops.cli.common import (
    DEFAULT_HOSTS,
    CandidateIdOption,
    GraceOption,
    HostsOption,
    LogFormat,
    LogFormatOption,
    SessionTimeoutOption,
    UsageError,
    VerboseOption,
    valid_path,
)
from zkelect.ops.cli.security_options import with_candidate_security
from zkelect.ops.logs import configure, secrets_of
from zkelect.ops.supervisor import (
    DEFAULT_GRACE,
    OnExit,
    Supervisor,
    SupervisorOptions,
)
from zkelect.security import ClientSecurity

__all__ = ["RUN_USAGE", "app"]

app = typer.Typer()

RUN_USAGE = "zkelect run PATH [OPTIONS] -- CMD [ARGS]..."

_RUN_HELP = (
    "Run CMD only while this process leads the election at PATH.\n\n"
    "When elected, CMD starts in its own process group with ZKELECT_EPOCH, ZKELECT_PATH, "
    "ZKELECT_ID and ZKELECT_TOKEN in its environment. On leadership loss the group gets "
    "SIGTERM, then SIGKILL after --grace seconds (sooner if a successor could be elected "
    "sooner), and the candidate keeps campaigning. A planned switchover (zkelect switchover, "
    "or a candidate of higher --priority) stops CMD the same way, within --grace, before "
    "the next leader is elected. "
    "On SIGTERM/SIGINT: CMD is stopped first, then the election is left, then exit 0. "
    "If this process is SIGKILLed, CMD dies with it (PR_SET_PDEATHSIG). Put CMD after '--'."
)

_CommandArgument = Annotated[
    list[str] | None,
    typer.Argument(metavar="-- CMD [ARGS]...", help="The command to run while leader."),
]
_HttpPort = Annotated[
    int | None,
    typer.Option(
        "--http-port",
        envvar="ZKELECT_HTTP_PORT",
        show_envvar=True,
        min=0,
        max=65535,
        help="Serve /metrics, /healthz and /leader on this port (0: any free port).",
    ),
]
_HttpBind = Annotated[
    str,
    typer.Option(
        "--http-bind",
        envvar="ZKELECT_HTTP_BIND",
        show_envvar=True,
        help="Address the HTTP server listens on.",
    ),
]
_OnExitOption = Annotated[
    OnExit,
    typer.Option(
        "--on-exit",
        envvar="ZKELECT_ON_EXIT",
        show_envvar=True,
        case_sensitive=False,
        help="When CMD exits on its own while leading: 'release' leaves the election and "
        "exits with CMD's code; 'restart' starts it again after a short backoff.",
    ),
]
_StartTimeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        envvar="ZKELECT_TIMEOUT",
        show_envvar=True,
        min=0.1,
        max=MAX_SECONDS,
        help="Seconds to wait for ZooKeeper at start (a member that answers late; every "
        "member refusing, or no member's name resolving, fails at once).",
    ),
]

_Priority = Annotated[
    int,
    typer.Option(
        "--priority",
        envvar="ZKELECT_PRIORITY",
        show_envvar=True,
        min=-1_000_000,
        max=1_000_000,
        help="This candidate's priority: a connected candidate of higher priority is handed "
        "leadership by a drained switchover (CMD stopped first), once settled; equal "
        "priorities keep their order. In its node's name, so every candidate sees it.",
    ),
]
_PrioritySettle = Annotated[
    float,
    typer.Option(
        "--priority-settle",
        envvar="ZKELECT_PRIORITY_SETTLE",
        show_envvar=True,
        min=0,
        max=MAX_SECONDS,
        help="Seconds a higher-priority candidate must have been connected before it asks "
        "for leadership, and a leader's connection steady before it hands over.",
    ),
]
_PriorityInterval = Annotated[
    float,
    typer.Option(
        "--priority-interval",
        envvar="ZKELECT_PRIORITY_INTERVAL",
        show_envvar=True,
        min=0,
        max=MAX_SECONDS,
        help="A leader refuses a priority switchover within this many seconds of its own "
        "election: at most one automatic switchover per interval (no flapping).",
    ),
]
#: ElectionConfig's names for the settings these options set, in the options' words.
_CONFIG_FLAGS = {
    "priority_settle": "--priority-settle",
    "priority_interval": "--priority-interval",
    "priority": "--priority",
    "drain_timeout": "--grace",
}


# The supervisor says these itself, with what it did to the child: the library's own
# records of them would print each twice.
_SAID_BY_SUPERVISOR = ("elected", "revoked", "draining", "drained")


def _configure_logging(
    verbose: int, log_format: LogFormat, path: str, candidate: str, security: ClientSecurity
) -> None:
    """Every line timestamped, in ``log_format``, naming this candidate; no secret in any."""
    configure(
        log_format=log_format.value,
        verbosity=verbose,
        prefix=f"zkelect run {candidate}",
        context={"election": path, "candidate": candidate},
        secrets=secrets_of(security),
        drop_events=_SAID_BY_SUPERVISOR,
    )


@app.command("run", help=_RUN_HELP)
@with_candidate_security
def run(
    path: Annotated[str, typer.Argument(help="Election path, e.g. /elections/cron.")],
    command: _CommandArgument = None,
    candidate_id: CandidateIdOption = None,
    hosts: HostsOption = DEFAULT_HOSTS,
    http_port: _HttpPort = None,
    http_bind: _HttpBind = "127.0.0.1",
    grace: GraceOption = DEFAULT_GRACE,
    on_exit: _OnExitOption = OnExit.RELEASE,
    session_timeout: SessionTimeoutOption = 10.0,
    timeout: _StartTimeout = 15.0,
    priority: _Priority = 0,
    priority_settle: _PrioritySettle = 10.0,
    priority_interval: _PriorityInterval = 60.0,
    verbose: VerboseOption = 0,
    log_format: LogFormatOption = LogFormat.TEXT,
    *,
    security: ClientSecurity,
) -> None:
    path = valid_path(path)
    argv = list(command or [])
    if not argv:
        raise UsageError(f"missing CMD: {RUN_USAGE}")
    problem = command_problem(argv)
    if problem is not None:
        raise UsageError(problem)
    # The id Election would pick, chosen here so that every log line can name it.
    candidate_id = default_candidate_id() if candidate_id is None else candidate_id
    options = SupervisorOptions(
        hosts=hosts,
        path=path,
        command=argv,
        candidate_id=candidate_id,
        grace=grace,
        on_exit=on_exit,
        session_timeout=session_timeout,
        connect_timeout=timeout,
        http_port=http_port,
        http_bind=http_bind,
        security=security,
        priority=priority,
        priority_settle=priority_settle,
        priority_interval=priority_interval,
    )
    supervisor = _supervisor(options)
    _configure_logging(verbose, log_format, path, candidate_id, security)
    raise typer.Exit(supervisor.run())


def _supervisor(options: SupervisorOptions) -> Supervisor:
    """The supervisor, or a usage error naming the option when the election's
    configuration refuses a value (priority_settle -> --priority-settle)."""
    try:
        return Supervisor(options)
    except ConfigurationError as exc:
        message = str(exc)
        for name, flag in _CONFIG_FLAGS.items():
            if message.startswith(name):
                message = flag + message.removeprefix(name)
                break
        raise UsageError(message) from None


@app.command("demo")
def demo(
    session_timeout: Annotated[
        float,
        typer.Option(
            "--session-timeout",
            min=0.4,
            max=10.0,
            help="Session timeout of the demo's candidates, seconds (the failover time).",
        ),
    ] = 2.0,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Show every line the candidates and workers print."),
    ] = False,
) -> None:
    """The guided failover demo: a local 3-member ensemble, 3 `zkelect run` candidates
    writing through a fenced store, a crash, a freeze and a stale write refused."""
    from zkelect.ops.demo import run_demo

    raise typer.Exit(run_demo(session_timeout=session_timeout, verbose=verbose))


@app.command("demo-worker", hidden=True)
def demo_worker(
    db: Annotated[str, typer.Option("--db", help="The demo's SQLite store.")],
) -> None:
    """The demo leader's work: a fenced write every 100 ms until SIGTERM. ``zkelect demo``
    starts it as the command of its ``zkelect run`` candidates, which give it ZKELECT_TOKEN."""
    from zkelect.ops.demo import worker_main

    try:
        code = worker_main(db)
    except ZkElectError as exc:  # no token: not started by `zkelect run`
        raise UsageError(f"demo-worker: {exc}") from None
    raise typer.Exit(code)
