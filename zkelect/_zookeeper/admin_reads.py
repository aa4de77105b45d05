"""One short read-only session's look at a deployment, for ``zkelect doctor``.

``/zookeeper/config``, an election path's ACL, and its children with the path's stat from
the same reply (the sequence counter is in it). kazoo's answers and failures become plain
values here, so the doctor's rules never see kazoo.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoAuthError, NoNodeError

from zkelect._zookeeper.options import client_options
from zkelect._zookeeper.tools import connected_session
from zkelect.errors import ConnectionFailedError, ZkElectError
from zkelect.security import ClientSecurity

__all__ = ["AclRead", "ChildrenRead", "DeploymentReads", "read_deployment"]


@dataclass(frozen=True)
class AclRead:
    """A path's ACL: ``status`` is "ok", "missing", "unreadable" (NoAuth) or "error"."""

    status: str
    entries: tuple[tuple[str, str, int], ...] = ()  # (scheme, id, permission bits)
    error: str = ""


@dataclass(frozen=True)
class ChildrenRead:
    """A path's children and stat; ``status`` as for :class:`AclRead`."""

    status: str
    children: tuple[str, ...] = ()
    cversion: int = 0
    num_children: int = 0
    ctime_ms: int = 0
    error: str = ""


@dataclass(frozen=True)
class DeploymentReads:
    connected: bool
    error: str = ""  # why no session could be established
    config: str | None = None  # /zookeeper/config's text, if readable
    acl: AclRead | None = None
    children: ChildrenRead | None = None


def read_deployment(
    hosts: str,
    path: str | None,
    timeout: float,
    auth: tuple[str, str] | None = None,
    security: ClientSecurity | None = None,
) -> DeploymentReads:
    """Connect (bounded by ``timeout``), read, close. Never raises for what it reads."""
    logging.getLogger("kazoo").addHandler(logging.NullHandler())  # no stray tracebacks
    options = client_options(security) if security is not None else {}
    if auth:
        options["auth_data"] = [*options.get("auth_data", []), auth]
    try:
        with connected_session(
            hosts, connect_timeout=timeout, session_timeout=10.0, client_options=options
        ) as session:
            return _read(session.client, path)
    except ConnectionFailedError as exc:  # TLSError included
        if type(exc) is ConnectionFailedError:
            return DeploymentReads(False, f"no session could be established within {timeout:g} s")
        return DeploymentReads(False, f"no session: {exc}")
    except ZkElectError as exc:  # e.g. SASL refused
        return DeploymentReads(False, f"no session: {exc}")


def _read(client: KazooClient, path: str | None) -> DeploymentReads:
    config = None
    with contextlib.suppress(KazooException):
        data, _ = client.get("/zookeeper/config")
        config = data.decode("utf-8", "replace")
    if path is None:
        return DeploymentReads(True, config=config)
    return DeploymentReads(True, "", config, _read_acl(client, path), _read_children(client, path))


def _failure(exc: KazooException) -> tuple[str, str]:
    if isinstance(exc, NoNodeError):
        return "missing", ""
    if isinstance(exc, NoAuthError):
        return "unreadable", ""
    return "error", f"{type(exc).__name__} {exc}".strip()


def _read_acl(client: KazooClient, path: str) -> AclRead:
    try:
        entries, _ = client.get_acls(path)
    except KazooException as exc:
        status, error = _failure(exc)
        return AclRead(status, error=error)
    return AclRead("ok", tuple((str(e.id.scheme), str(e.id.id), int(e.perms)) for e in entries))


def _read_children(client: KazooClient, path: str) -> ChildrenRead:
    try:
        children, stat = client.get_children(path, include_data=True)
    except KazooException as exc:
        status, error = _failure(exc)
        return ChildrenRead(status, error=error)
    return ChildrenRead(
        "ok",
        tuple(str(child) for child in children),
        int(stat.cversion),
        int(stat.numChildren),
        int(stat.ctime),
    )
