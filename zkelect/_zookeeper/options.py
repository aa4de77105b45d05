"""zkelect's security values (security.py) as the keyword arguments of a KazooClient.

security.py holds the values and validates them without kazoo; this is where they become
kazoo's: ``ACL``/``Id`` objects for ``default_acl``, ``auth_data``, ``sasl_options``, and
for TLS ``use_ssl`` plus a connection handler that uses ``TlsOptions.ssl_context()``
(connect.py's ``TlsHandler``: only your CA is trusted and the hostname is checked).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kazoo.security import ACL, Id

from zkelect._zookeeper.connect import TlsHandler
from zkelect.security import (
    ClientSecurity,
    DigestAuth,
    ElectionAcl,
    SaslOptions,
    TlsOptions,
    check_options,
)

__all__ = ["client_options", "kazoo_acl", "kazoo_options"]


def kazoo_acl(acl: ElectionAcl) -> list[Any]:
    """The ACL as kazoo ``ACL`` objects (for ``default_acl`` or ``create(acl=...)``)."""
    return [ACL(perms, Id(scheme, ident)) for scheme, ident, perms in acl.entries()]


def kazoo_options(
    *,
    auth: DigestAuth | Sequence[DigestAuth] | None = None,
    acl: ElectionAcl | None = None,
    tls: TlsOptions | None = None,
    sasl: SaslOptions | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``KazooClient(hosts, **kazoo_options(...))`` that do what the
    same arguments do for an Election: ``auth_data``, ``default_acl``, ``sasl_options``,
    and for TLS ``use_ssl`` plus a connection handler that uses ``tls.ssl_context()`` (so
    only your CA is trusted and the hostname is checked)."""
    digests, acl, tls, sasl = check_options(auth, acl, tls, sasl)
    options: dict[str, Any] = {}
    if digests:
        options["auth_data"] = [d.auth_data() for d in digests]
    if acl is not None:
        options["default_acl"] = kazoo_acl(acl)
    if sasl is not None:
        options["sasl_options"] = sasl.kazoo()
    if tls is not None:
        options.update(
            use_ssl=True,
            verify_certs=tls.verify,
            check_hostname=tls.check_hostname,
            ca=tls.ca_file,
            certfile=tls.cert_file,
            keyfile=tls.key_file,
            keyfile_password=tls.key_password,
            handler=TlsHandler(tls.ssl_context()),
        )
    return options


def client_options(security: ClientSecurity) -> dict[str, Any]:
    """Keyword arguments for a KazooClient with all of ``security`` (see ``kazoo_options``);
    ``other_auth`` is added to ``auth_data``."""
    options = kazoo_options(
        auth=security.auth, acl=security.acl, tls=security.tls, sasl=security.sasl
    )
    if security.other_auth:
        options["auth_data"] = [*options.get("auth_data", []), *security.other_auth]
    return options
