"""``zkelect run`` (run a command only while leader) and ``zkelect demo`` (the guided demo).

The logic lives in supervisor.py and demo.py; this module only parses arguments and maps
them onto those. See docs/cli-run.md.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from zkelect.config import MAX_SECONDS
from zkelect.ops.cli.common import (
    DEFAULT_HOSTS,
    AclNoReadOption,
    AclWriterOption,
    AuthOption,
    GraceOption,
    SaslUserOption,
    TlsCaOption,
    TlsCertOption,
    TlsKeyOption,
    TlsNoVerifyHostnameOption,
    TlsOption,
    UsageError,
    client_security,
    valid_path,
)
from zkelect.ops.supervisor import (
    DEFAULT_GRACE,
    OnExit,
    Supervisor,
    SupervisorOptions,
    command_problem,
)

__all__ = ["app"]

app = typer.Typer()

_RUN_HELP = (
    "Run CMD only while this process leads the election at PATH.\n\n"
    "When elected, CMD starts in its own process group with ZKELECT_EPOCH, ZKELECT_PATH, "
    "ZKELECT_ID and ZKELECT_TOKEN in its environment. On leadership loss the group gets "
    "SIGTERM, then SIGKILL after --grace seconds (sooner if a successor could be elected "
    "sooner), and the candidate keeps campaigning. "
    "On SIGTERM/SIGINT: CMD is stopped first, then the election is left, then exit 0. "
    "If this process is SIGKILLed, CMD dies with it (PR_SET_PDEATHSIG). Put CMD after '--'."
)
# cli_common.HostsOption's help has '[/chroot]', which rich reads as a closing markup tag
# (a MarkupError on --help); the same option with help text rich can render.
_Hosts = Annotated[
    str,
    typer.Option(
        "--hosts",
        envvar="ZKELECT_HOSTS",
        help="ZooKeeper connect string 'h1:2181,h2:2181' with an optional /chroot "
        "(env ZKELECT_HOSTS).",
        show_default=True,
    ),
]


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="zkelect run: %(name)s %(levelname)s: %(message)s",
    )
    # kazoo narrates every dropped connection; the supervisor reports what matters
    # (revoked, with the reason) in its own lines.
    logging.getLogger("kazoo").setLevel(logging.DEBUG if verbose else logging.CRITICAL)


@app.command("run", help=_RUN_HELP)
def run(
    path: Annotated[str, typer.Argument(help="Election path, e.g. /elections/cron.")],
    command: Annotated[
        list[str] | None,
        typer.Argument(metavar="-- CMD [ARGS]...", help="The command to run while leader."),
    ] = None,
    candidate_id: Annotated[
        str | None,
        typer.Option("--id", help="Candidate id shown to operators (default: hostname-pid)."),
    ] = None,
    hosts: _Hosts = DEFAULT_HOSTS,
    http_port: Annotated[
        int | None,
        typer.Option(
            "--http-port",
            min=0,
            max=65535,
            help="Serve /metrics, /healthz and /leader on this port (0: any free port).",
        ),
    ] = None,
    http_bind: Annotated[
        str, typer.Option("--http-bind", help="Address the HTTP server listens on.")
    ] = "127.0.0.1",
    grace: GraceOption = DEFAULT_GRACE,
    on_exit: Annotated[
        OnExit,
        typer.Option(
            "--on-exit",
            case_sensitive=False,
            help="When CMD exits on its own while leading: 'release' leaves the election and "
            "exits with CMD's code; 'restart' starts it again after a short backoff.",
        ),
    ] = OnExit.RELEASE,
    session_timeout: Annotated[
        float,
        typer.Option(
            "--session-timeout",
            min=0.1,
            max=MAX_SECONDS,
            help="ZooKeeper session timeout, seconds: how long a SIGKILLed or frozen leader "
            "keeps its node before a successor is elected.",
        ),
    ] = 10.0,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=0.1, max=MAX_SECONDS, help="Seconds to wait for ZooKeeper at start."
        ),
    ] = 15.0,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also log kazoo's connection events.")
    ] = False,
    auth: AuthOption = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_no_verify_hostname: TlsNoVerifyHostnameOption = False,
    sasl_user: SaslUserOption = None,
    acl_writer: AclWriterOption = None,
    acl_no_read: AclNoReadOption = False,
) -> None:
    path = valid_path(path)
    security = client_security(
        auth=auth,
        tls=tls,
        tls_ca=tls_ca,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_no_verify_hostname=tls_no_verify_hostname,
        sasl_user=sasl_user,
        acl_writers=acl_writer,
        acl_no_read=acl_no_read,
    )
    if security.other_auth:
        raise UsageError("zkelect run authenticates with --auth digest:USER:PASSWORD only")
    argv = list(command or [])
    if not argv:
        raise UsageError("missing CMD: zkelect run PATH [OPTIONS] -- CMD [ARGS]...")
    problem = command_problem(argv)
    if problem is not None:
        raise UsageError(problem)
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
    )
    _configure_logging(verbose)
    raise typer.Exit(Supervisor(options).run())


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
