"""Keeping strangers out of an election: digest credentials, ACLs, TLS and SASL options.

Everything here is a frozen value, validated when built (``ConfigurationError`` names the bad
field); nothing talks to ZooKeeper or imports kazoo. ``Election(hosts, path, auth=..., acl=...,
tls=..., sasl=...)`` builds its client from them; for a KazooClient of your own, pass
``**zkelect.kazoo_options(...)`` to its constructor (see docs/security.md): the values become
kazoo's in the ZooKeeper boundary (zkelect/_zookeeper/options.py).

* ``DigestAuth(username, password)``: the ``digest`` identity a session adds (``auth_data``).
  ZooKeeper accepts any digest credentials: a wrong password is not refused at connect, it
  just names another identity, so the ACL check (NoAuth) is where it fails.
* ``ElectionAcl(writers=[...], others_may_read=True)``: who may create and delete candidate
  nodes in the election path (and everything else: ``cdrwa``); everybody else may READ, or
  nothing. zkelect creates the path, its missing parents and every candidate node with it.
* ``TlsOptions(ca_file=...)``: certificate verification and hostname checking are on unless
  switched off by name; kazoo's own default leaves hostname checking off.
* ``SaslOptions(username, password)``: SASL DIGEST-MD5 (needs the ``pure-sasl`` package:
  ``pip install 'zkelect[sasl]'``).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zkelect.errors import ConfigurationError

__all__ = [
    "AclEntry",
    "ClientSecurity",
    "DigestAuth",
    "ElectionAcl",
    "SaslOptions",
    "TlsOptions",
    "check_options",
    "digest_id",
]

# ZooKeeper's permission bits (org.apache.zookeeper.ZooDefs.Perms).
READ, WRITE, CREATE, DELETE, ADMIN = 1, 2, 4, 8, 16
ALL = READ | WRITE | CREATE | DELETE | ADMIN

#: One ACL entry as (scheme, id, permission bits), e.g. ("world", "anyone", 1).
AclEntry = tuple[str, str, int]


def _text(owner: str, name: str, value: object, *, forbid: str = "") -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{owner}.{name} must be a non-empty str, got {value!r}")
    bad = [c for c in value if c in forbid or ord(c) < 32 or ord(c) == 127]
    if bad:
        raise ConfigurationError(
            f"{owner}.{name} must not contain {bad[0]!r}"
            + (f" (no {' '.join(repr(c) for c in forbid)} or control characters)" if forbid else "")
        )
    return value


def digest_id(username: str, password: str) -> str:
    """The id ZooKeeper's digest scheme gives ``username:password``: ``user:base64(sha1)``."""
    digest = hashlib.sha1(f"{username}:{password}".encode()).digest()
    return f"{username}:{base64.b64encode(digest).decode('ascii')}"


@dataclass(frozen=True)
class DigestAuth:
    """Digest credentials a candidate's session authenticates with (``auth=``)."""

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        _text("DigestAuth", "username", self.username, forbid=":")
        _text("DigestAuth", "password", self.password)

    @property
    def acl_id(self) -> str:
        """This identity as an ACL names it: ``digest:<user>:<hash>``."""
        return f"digest:{digest_id(self.username, self.password)}"

    def auth_data(self) -> tuple[str, str]:
        """The (scheme, credential) pair for kazoo's ``auth_data``/``add_auth``."""
        return ("digest", f"{self.username}:{self.password}")


def _identity(writer: object) -> tuple[str, str]:
    """(scheme, id) of one writer: a DigestAuth, or 'digest:user:HASH' / 'sasl:user'."""
    if isinstance(writer, DigestAuth):
        return ("digest", digest_id(writer.username, writer.password))
    if not isinstance(writer, str):
        raise ConfigurationError(
            f"an ElectionAcl writer must be a DigestAuth or a 'digest:USER:HASH' / 'sasl:USER' "
            f"str, got {type(writer).__name__}"
        )
    scheme, _, ident = writer.partition(":")
    if scheme == "sasl" and ident and ":" not in ident and ident.strip() == ident:
        return ("sasl", ident)
    if scheme == "digest":
        user, sep, hashed = ident.partition(":")
        if user and sep and len(hashed) == 28 and hashed.endswith("="):
            try:
                if len(base64.b64decode(hashed, validate=True)) == 20:
                    return ("digest", ident)
            except ValueError:
                pass
        raise ConfigurationError(
            f"ElectionAcl writer {writer!r}: a digest identity is 'digest:USER:HASH' with the "
            "base64 SHA-1 hash ZooKeeper uses (or pass DigestAuth(user, password))"
        )
    raise ConfigurationError(
        f"ElectionAcl writer {writer!r}: use a DigestAuth, 'digest:USER:HASH' or 'sasl:USER'"
    )


@dataclass(frozen=True)
class ElectionAcl:
    """Who may take part in an election: ``writers`` get every permission on the path, its
    parents zkelect creates and the candidate nodes; everybody else gets READ if
    ``others_may_read`` (status, watch and exporters then work without credentials), else
    nothing. An existing path keeps its ACL: zkelect reports a different one, never changes it.
    """

    writers: Sequence[DigestAuth | str]
    others_may_read: bool = True

    def __post_init__(self) -> None:
        writers = self.writers
        if isinstance(writers, (str, DigestAuth)) or not isinstance(writers, Iterable):
            raise ConfigurationError(
                "ElectionAcl.writers must be a list of DigestAuth / 'digest:USER:HASH' / "
                f"'sasl:USER', got {writers!r}"
            )
        writers = tuple(writers)
        if not writers:
            raise ConfigurationError(
                "ElectionAcl.writers must name at least one identity (nobody could join)"
            )
        for writer in writers:
            _identity(writer)
        if not isinstance(self.others_may_read, bool):
            raise ConfigurationError(
                f"ElectionAcl.others_may_read must be True or False, got {self.others_may_read!r}"
            )
        object.__setattr__(self, "writers", writers)

    def entries(self) -> list[AclEntry]:
        """The ACL as (scheme, id, perms), writers first, without duplicates."""
        found = dict.fromkeys((*_identity(w), ALL) for w in self.writers)
        if self.others_may_read:
            found[("world", "anyone", READ)] = None
        return list(found)

    def differences(self, found: Iterable[AclEntry]) -> str | None:
        """None if ``found`` (an existing node's ACL) is this one; else what differs."""
        want, have = set(self.entries()), set(found)
        if want == have:
            return None
        parts = []
        if want - have:
            parts.append("missing " + ", ".join(_show(e) for e in sorted(want - have)))
        if have - want:
            parts.append("extra " + ", ".join(_show(e) for e in sorted(have - want)))
        return "; ".join(parts)


def _show(entry: AclEntry) -> str:
    scheme, ident, perms = entry
    letters = "".join(c for c, bit in zip("rwcda", (1, 2, 4, 8, 16), strict=True) if perms & bit)
    return f"{scheme}:{ident}:{letters}"


def _file(owner: str, name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, Path)) or not str(value):
        raise ConfigurationError(f"{owner}.{name} must be a file path, got {value!r}")
    path = Path(value)
    if not path.is_file():
        raise ConfigurationError(f"{owner}.{name}: no such file: {str(path)!r}")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigurationError(f"{owner}.{name}: cannot read {str(path)!r}: {exc}") from None
    return str(path)


@dataclass(frozen=True)
class TlsOptions:
    """TLS to ZooKeeper's ``secureClientPort``.

    ``ca_file``: PEM bundle of the CAs that sign the servers' certificates; when given, ONLY
    these are trusted (kazoo alone would also trust every system CA); when None, the system
    CAs are. ``cert_file``/``key_file``: a client certificate, for servers with
    ``ssl.clientAuth=need``. ``verify`` (the server's certificate chain) and
    ``check_hostname`` (its name against the host in the connect string) are on by default
    and can only be switched off by name; ``check_hostname`` needs ``verify``.
    """

    ca_file: str | Path | None = None
    cert_file: str | Path | None = None
    key_file: str | Path | None = None
    key_password: str | None = field(default=None, repr=False)
    verify: bool = True
    check_hostname: bool = True

    def __post_init__(self) -> None:
        for name in ("ca_file", "cert_file", "key_file"):
            object.__setattr__(self, name, _file("TlsOptions", name, getattr(self, name)))
        for name in ("verify", "check_hostname"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"TlsOptions.{name} must be True or False")
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigurationError(
                "TlsOptions: give cert_file and key_file together (a client certificate needs "
                "its key), or neither"
            )
        if self.key_password is not None and not isinstance(self.key_password, str):
            raise ConfigurationError("TlsOptions.key_password must be a str or None")
        if self.check_hostname and not self.verify:
            raise ConfigurationError(
                "TlsOptions: check_hostname=True needs verify=True; to switch off "
                "verification, pass verify=False, check_hostname=False (insecure: anyone on "
                "the path can impersonate the ensemble)"
            )
        self.ssl_context()  # unreadable PEM or a key that does not match: say so now

    def ssl_context(self) -> ssl.SSLContext:
        """A client context as configured: TLS 1.2+, and only ``ca_file`` if given."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = self.check_hostname
        context.verify_mode = ssl.CERT_REQUIRED if self.verify else ssl.CERT_NONE
        try:
            if self.ca_file is not None:
                context.load_verify_locations(cafile=str(self.ca_file))
            elif self.verify:
                context.load_default_certs(ssl.Purpose.SERVER_AUTH)
            if self.cert_file is not None:
                context.load_cert_chain(
                    str(self.cert_file), str(self.key_file), password=self.key_password
                )
        except (ssl.SSLError, OSError) as exc:
            raise ConfigurationError(
                f"TlsOptions: cannot load the certificates ({exc}); ca_file must be a PEM CA "
                "bundle, cert_file a PEM certificate and key_file its PEM private key"
            ) from None
        return context


@dataclass(frozen=True)
class SaslOptions:
    """SASL authentication of the session; ZooKeeper's DIGEST-MD5 (a JAAS user)."""

    username: str
    password: str = field(repr=False)
    mechanism: str = "DIGEST-MD5"

    def __post_init__(self) -> None:
        _text("SaslOptions", "username", self.username)
        _text("SaslOptions", "password", self.password)
        if self.mechanism != "DIGEST-MD5":
            raise ConfigurationError(
                f"SaslOptions.mechanism: only 'DIGEST-MD5' is supported, got {self.mechanism!r}"
            )
        if importlib.util.find_spec("puresasl") is None:
            raise ConfigurationError(
                "SASL needs the pure-sasl package: pip install 'zkelect[sasl]' "
                "(or pip install pure-sasl)"
            )

    @property
    def acl_id(self) -> str:
        """This identity as an ACL names it: ``sasl:<user>``."""
        return f"sasl:{self.username}"

    def kazoo(self) -> dict[str, str]:
        return {"mechanism": self.mechanism, "username": self.username, "password": self.password}


def _auth_list(auth: object) -> list[DigestAuth]:
    if auth is None:
        return []
    items = [auth] if isinstance(auth, DigestAuth) else auth
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise ConfigurationError(
            f"auth must be a DigestAuth or a list of them, got {type(auth).__name__}"
        )
    items = list(items)
    for item in items:
        if not isinstance(item, DigestAuth):
            raise ConfigurationError(
                f"auth must be a DigestAuth or a list of them, got a {type(item).__name__}"
            )
    return items


def check_options(
    auth: object = None, acl: object = None, tls: object = None, sasl: object = None
) -> tuple[list[DigestAuth], ElectionAcl | None, TlsOptions | None, SaslOptions | None]:
    """The four security arguments, type-checked (each validated itself when built)."""
    for name, value, kind in (
        ("acl", acl, ElectionAcl),
        ("tls", tls, TlsOptions),
        ("sasl", sasl, SaslOptions),
    ):
        if value is not None and not isinstance(value, kind):
            raise ConfigurationError(
                f"{name} must be a zkelect.{kind.__name__} or None, got {type(value).__name__}"
            )
    return _auth_list(auth), acl, tls, sasl  # type: ignore[return-value]


@dataclass(frozen=True)
class ClientSecurity:
    """The four options together, as the CLI and long-running tools pass them around.

    ``other_auth``: (scheme, credential) pairs of other schemes for kazoo's ``auth_data``
    (read-only tools accept any scheme the servers know; candidates use ``auth``).
    """

    auth: tuple[DigestAuth, ...] = ()
    acl: ElectionAcl | None = None
    tls: TlsOptions | None = None
    sasl: SaslOptions | None = None
    other_auth: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        digests, _, _, _ = check_options(self.auth, self.acl, self.tls, self.sasl)
        object.__setattr__(self, "auth", tuple(digests))
        object.__setattr__(self, "other_auth", tuple(self.other_auth))

    def election_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for an Election built from a connect string."""
        if self.other_auth:
            schemes = ", ".join(sorted({scheme for scheme, _ in self.other_auth}))
            raise ConfigurationError(
                f"a candidate authenticates with digest credentials or SASL; not {schemes}"
            )
        return {"auth": self.auth, "acl": self.acl, "tls": self.tls, "sasl": self.sasl}
