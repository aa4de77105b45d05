"""``zkelect doctor``: check a deployment against the classic pitfalls (the checks: ops/doctor/)."""

from __future__ import annotations

from typing import Annotated

import typer

from zkelect.config import ElectionConfig, check_seconds, validate_connect_string
from zkelect.errors import ConfigurationError
from zkelect.ops.cli.common import (
    DEFAULT_HOSTS,
    GraceOption,
    HostsOption,
    JsonOption,
    TimeoutOption,
    UsageError,
    echo_json,
    valid_path,
)
from zkelect.ops.cli.security_options import with_security
from zkelect.ops.doctor import SEQUENCE_WRAP_MARGIN, CheckResult, Status, diagnose, worst
from zkelect.ops.supervisor import DEFAULT_GRACE
from zkelect.security import ClientSecurity

__all__ = ["app"]

app = typer.Typer()

_DEFAULTS = ElectionConfig()
_COLOURS = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "red"}


_HELP = (
    "Check the deployment against the classic pitfalls.\n\n"
    "Prints one line per check (ok / warn / fail) with the reason and the fix: ensemble "
    "size, quorum, the session timeout against the servers' bounds, the lease against "
    "realistic failure detection, zkelect run's --grace against the lease's margin, "
    "ZooKeeper on this host, an election path anyone may "
    "write, the path's sequence counter near or past its wrap at 2**31 (where Curator and "
    "kazoo order candidates differently from zkelect), four-letter words. Run it on a "
    "candidate's host, with the candidates' "
    "--session-timeout, --lease-margin and --grace.\n\n"
    "Exit code 1 when any check fails (warnings alone: 0). Read-only. To see inside the "
    "servers it needs the srvr and conf four-letter words (4lw.commands.whitelist)."
)


_EPILOG = (
    "Checks: ensemble-size (2 members fail, 4 or 6 warn, 1 warns); quorum (fewer than a "
    "majority of the voting members serving fails; members down warn); session-timeout "
    "(outside minSessionTimeout..maxSessionTimeout warns: it is negotiated into them); "
    "lease (the lease left after each heartbeat, session timeout * (1 - margin) - "
    "timeout / 4, below 2 s warns; a session timeout below 2 * syncLimit * tickTime, or "
    "below 2 * tickTime, warns; a margin below (syncLimit + 1) * tickTime warns); grace "
    "(--grace longer than the lease's margin warns: it is cut short after a loss the "
    "candidate did not choose); "
    "co-location (a member on this host warns); election-path (world:anyone with create, "
    "delete or admin fails; a missing path warns; given PATH only); sequence-wrap (given "
    "PATH only: Curator's string order electing another node than zkelect fails; a "
    f"negative sequence number, or fewer than {SEQUENCE_WRAP_MARGIN:,} left before the wrap, "
    "warns); "
    "four-letter-words (srvr or conf refused warns; nothing answering fails)."
)


_PathArgument = Annotated[
    str | None,
    typer.Argument(
        metavar="PATH",
        help="Election path whose ACL to check (omit to check only the ensemble).",
        show_default=False,
    ),
]
_SessionTimeout = Annotated[
    float,
    typer.Option(
        "--session-timeout",
        envvar="ZKELECT_SESSION_TIMEOUT",
        show_envvar=True,
        help="Session timeout (seconds) the candidates ask for.",
    ),
]
_LeaseMargin = Annotated[
    float,
    typer.Option(
        "--lease-margin",
        envvar="ZKELECT_LEASE_MARGIN",
        show_envvar=True,
        help="The candidates' lease_margin_ratio: the lease ends this fraction of the "
        "session timeout early.",
    ),
]


@app.command("doctor", help=_HELP, epilog=_EPILOG)
@with_security
def doctor(
    path: _PathArgument = None,
    hosts: HostsOption = DEFAULT_HOSTS,
    session_timeout: _SessionTimeout = _DEFAULTS.session_timeout,
    lease_margin: _LeaseMargin = _DEFAULTS.lease_margin_ratio,
    grace: GraceOption = DEFAULT_GRACE,
    json_output: JsonOption = False,
    timeout: TimeoutOption = 5.0,
    *,
    security: ClientSecurity,  # --auth also lets the session read a locked path's ACL
) -> None:
    """Check the deployment against the classic pitfalls (see zkelect.ops.doctor)."""
    if path is not None:
        path = valid_path(path)
    _check_candidates(hosts, session_timeout, lease_margin)
    results = diagnose(
        hosts,
        path,
        session_timeout=session_timeout,
        lease_margin=lease_margin,
        grace=grace,
        timeout=timeout,
        security=security,
    )
    if json_output:
        echo_json([r.as_dict() for r in results])
    else:
        _print(results)
    if worst(results) is Status.FAIL:
        raise typer.Exit(1)


def _check_candidates(hosts: str, session_timeout: float, lease_margin: float) -> None:
    """The candidates' settings as given, each error in the options' own words."""
    try:
        validate_connect_string(hosts)
        check_seconds("--session-timeout", session_timeout)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    if not 0 < lease_margin < 1:
        raise UsageError(f"--lease-margin must be a fraction in (0, 1), got {lease_margin:g}")
    try:  # what is left: a lease that does not fit between heartbeats
        ElectionConfig(session_timeout=session_timeout, lease_margin_ratio=lease_margin)
    except ConfigurationError as exc:
        raise UsageError(
            f"--lease-margin {lease_margin:g} with --session-timeout {session_timeout:g}: {exc}"
        ) from None


def _print(results: list[CheckResult]) -> None:
    width = max(len(r.check) for r in results)
    for r in results:
        status = typer.style(f"{r.status.value:<4}", fg=_COLOURS[r.status], bold=True)
        fix = f"  fix: {r.fix}" if r.fix else ""
        typer.echo(f"{status}  {r.check:<{width}}  {r.reason}{fix}")
