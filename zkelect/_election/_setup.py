"""Building an Election: its arguments checked, its session opened, its path's ACL
compared with the one asked for."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from zkelect._zookeeper.options import kazoo_options
from zkelect._zookeeper.outcomes import NoNode, Retryable, SessionGone
from zkelect._zookeeper.session import Session
from zkelect.clock import Clock
from zkelect.config import ElectionConfig
from zkelect.errors import ConfigurationError, ZkElectError
from zkelect.security import (
    DigestAuth,
    ElectionAcl,
    SaslOptions,
    TlsOptions,
    check_options,
)

__all__ = ["check_arguments", "check_path_acl", "checked_config", "open_session"]

log = logging.getLogger("zkelect")


def checked_config(config: ElectionConfig | None) -> ElectionConfig:
    if config is not None and not isinstance(config, ElectionConfig):
        raise ConfigurationError(f"config must be an ElectionConfig, got {config!r}")
    return config or ElectionConfig()


def check_arguments(
    on_elected: object, on_revoked: object, on_leader_change: object, metrics: object, clock: object
) -> None:
    for name, callback in (
        ("on_elected", on_elected),
        ("on_revoked", on_revoked),
        ("on_leader_change", on_leader_change),
    ):
        if callback is not None and not callable(callback):
            raise ConfigurationError(f"{name} must be callable, got {callback!r}")
    if not callable(clock):
        raise ConfigurationError(f"clock must be a callable returning seconds, got {clock!r}")
    if metrics is not None and not callable(getattr(metrics, "election_started", None)):
        raise ConfigurationError(f"metrics must be a MetricsRecorder, got {metrics!r}")


def open_session(
    client_or_hosts: Any,
    config: ElectionConfig,
    clock: Clock,
    auth: DigestAuth | Sequence[DigestAuth] | None,
    acl: ElectionAcl | None,
    tls: TlsOptions | None,
    sasl: SaslOptions | None,
) -> tuple[Session, ElectionAcl | None]:
    """The session to run on: a client of our own for a connect string, else the shared
    one of the KazooClient given (whose options must then already be what was asked)."""
    digests, acl, tls, sasl = check_options(auth, acl, tls, sasl)
    if isinstance(client_or_hosts, str):
        options = kazoo_options(auth=digests, acl=acl, tls=tls, sasl=sasl)
        return Session.owned_by_election(client_or_hosts, config, clock, **options), acl
    if digests or tls is not None or sasl is not None:
        raise ConfigurationError(
            "auth=, tls= and sasl= configure the client zkelect builds from a connect "
            "string; build your own KazooClient with them instead: "
            "KazooClient(hosts, **zkelect.kazoo_options(auth=..., tls=..., sasl=...))"
        )
    session = Session.for_client(client_or_hosts, config, clock)
    if acl is not None:
        differs = acl.differences(session.default_acl())
        if differs is not None:
            raise ConfigurationError(
                f"acl= needs the shared KazooClient to create nodes with it, but its "
                f"default_acl differs ({differs}): build it with "
                "KazooClient(hosts, **zkelect.kazoo_options(acl=..., auth=...))"
            )
    return session, acl


def check_path_acl(session: Session, path: str, acl: ElectionAcl | None) -> str | None:
    """Report (never change) an existing election path whose ACL is not ``acl=``'s: what
    differs, or None."""
    if acl is None:
        return None
    try:
        found = session.get_acl(path)
    except (NoNode, Retryable, SessionGone, ZkElectError):
        return None  # missing: we create it with ours; unreadable: the join will say so
    differs = acl.differences(found)
    if differs is not None:
        log.warning(
            "zkelect %s: the election path exists with another ACL than acl= asks for "
            "(%s); it is left as it is: change it with setAcl if it should match",
            path,
            differs,
        )
    return differs
