"""What every ``zkelect`` command shares: the connect string, errors, output.

Conventions (DESIGN.md §5): errors are one line on stderr, never a traceback; exit code
2 for usage errors, 1 for operational failures (no quorum, no permission, timeout).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from kazoo.client import KazooClient

from zkelect._zookeeper.connect import start_client
from zkelect.config import MAX_SECONDS, validate_connect_string, validate_path
from zkelect.errors import ChrootMissingError, ConfigurationError, ConnectionFailedError
from zkelect.security import ClientSecurity, DigestAuth, ElectionAcl, SaslOptions, TlsOptions

__all__ = [
    "DEFAULT_HOSTS",
    "SASL_PASSWORD_ENV",
    "AclNoReadOption",
    "AclWriterOption",
    "AuthOption",
    "CliError",
    "GraceOption",
    "HostsOption",
    "JsonOption",
    "SaslUserOption",
    "TimeoutOption",
    "TlsCaOption",
    "TlsCertOption",
    "TlsKeyOption",
    "TlsNoVerifyHostnameOption",
    "TlsOption",
    "UsageError",
    "client_security",
    "connected_client",
    "echo_json",
    "fail",
    "valid_path",
]

DEFAULT_HOSTS = "127.0.0.1:2181"

HostsOption = Annotated[
    str,
    typer.Option(
        "--hosts",
        envvar="ZKELECT_HOSTS",
        help="ZooKeeper connect string 'h1:2181,h2:2181', optionally ending in /chroot "
        "(env ZKELECT_HOSTS).",
        show_default=True,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=0.1,
        max=MAX_SECONDS,
        help="Seconds to wait for ZooKeeper before giving up.",
    ),
]
#: zkelect run's --grace; doctor takes it too, to say whether it holds.
GraceOption = Annotated[
    float,
    typer.Option(
        "--grace",
        min=0,
        max=MAX_SECONDS,
        help="Seconds between SIGTERM and SIGKILL to zkelect run's command when the candidate "
        "stops; after a loss it did not choose, the command is SIGKILLed by the time a "
        "successor could be elected, whatever --grace says.",
    ),
]


SASL_PASSWORD_ENV = "ZKELECT_SASL_PASSWORD"
_SECURITY = "Security"  # the help panel every connecting command shows these options in

AuthOption = Annotated[
    str | None,
    typer.Option(
        "--auth",
        envvar="ZKELECT_AUTH",
        metavar="SCHEME:CREDENTIAL",
        help="Authenticate the session, e.g. 'digest:user:password' (env ZKELECT_AUTH).",
        show_default=False,
        rich_help_panel=_SECURITY,
    ),
]
TlsOption = Annotated[
    bool,
    typer.Option(
        "--tls",
        envvar="ZKELECT_TLS",
        help="Connect with TLS (to the servers' secureClientPort), trusting the system CAs "
        "unless --tls-ca is given (implied by --tls-ca). Certificates and host names are "
        "verified.",
        rich_help_panel=_SECURITY,
    ),
]
TlsCaOption = Annotated[
    str | None,
    typer.Option(
        "--tls-ca",
        envvar="ZKELECT_TLS_CA",
        metavar="FILE",
        help="PEM file of the CA(s) that sign the servers' certificates; only these are "
        "trusted. Implies --tls (env ZKELECT_TLS_CA).",
        show_default=False,
        rich_help_panel=_SECURITY,
    ),
]
TlsCertOption = Annotated[
    str | None,
    typer.Option(
        "--tls-cert",
        envvar="ZKELECT_TLS_CERT",
        metavar="FILE",
        help="PEM client certificate, for servers that require one (with --tls-key).",
        show_default=False,
        rich_help_panel=_SECURITY,
    ),
]
TlsKeyOption = Annotated[
    str | None,
    typer.Option(
        "--tls-key",
        envvar="ZKELECT_TLS_KEY",
        metavar="FILE",
        help="PEM private key of --tls-cert (unencrypted).",
        show_default=False,
        rich_help_panel=_SECURITY,
    ),
]
TlsNoVerifyHostnameOption = Annotated[
    bool,
    typer.Option(
        "--tls-no-verify-hostname",
        help="Do not check that the server's certificate names the host connected to "
        "(insecure: any holder of a certificate from the CA can impersonate the ensemble).",
        rich_help_panel=_SECURITY,
    ),
]
SaslUserOption = Annotated[
    str | None,
    typer.Option(
        "--sasl-user",
        envvar="ZKELECT_SASL_USER",
        metavar="USER",
        help=f"Authenticate with SASL DIGEST-MD5 as USER; the password is read from the "
        f"environment variable {SASL_PASSWORD_ENV}, never from the command line.",
        show_default=False,
        rich_help_panel=_SECURITY,
    ),
]
AclWriterOption = Annotated[
    list[str] | None,
    typer.Option(
        "--acl-writer",
        metavar="IDENTITY",
        help="Create the election path (and its missing parents) with an ACL that lets only "
        "these identities join: 'digest:USER:HASH', 'sasl:USER', or 'self' for this "
        "candidate's --auth / --sasl-user identity. Repeat for more.",
        show_default=False,
        rich_help_panel=_SECURITY,
    ),
]
AclNoReadOption = Annotated[
    bool,
    typer.Option(
        "--acl-no-read",
        help="With --acl-writer: others may not even read the election (default: they may).",
        rich_help_panel=_SECURITY,
    ),
]


class CliError(Exception):
    """An operational failure: printed as one line, exit code 1."""

    exit_code = 1


class UsageError(CliError):
    """Bad arguments the parser could not catch: printed as one line, exit code 2."""

    exit_code = 2


def fail(message: str, *, usage: bool = False) -> NoReturn:
    raise UsageError(message) if usage else CliError(message)


def valid_path(path: str) -> str:
    """The election path, or a usage error naming what is wrong with it."""
    try:
        return validate_path(path)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


def client_security(
    *,
    auth: str | None = None,
    tls: bool = False,
    tls_ca: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    tls_no_verify_hostname: bool = False,
    sasl_user: str | None = None,
    acl_writers: list[str] | None = None,
    acl_no_read: bool = False,
) -> ClientSecurity:
    """The security options of a command line, checked; a usage error names a bad one."""
    try:
        digests: tuple[DigestAuth, ...] = ()
        other: tuple[tuple[str, str], ...] = ()
        if auth:
            scheme, sep, credential = auth.partition(":")
            if not sep or not scheme or not credential:
                raise ConfigurationError(
                    f"--auth must be SCHEME:CREDENTIAL, e.g. digest:user:password; got {auth!r}"
                )
            if scheme == "digest":
                user, sep, password = credential.partition(":")
                if not sep:
                    raise ConfigurationError("--auth digest:... must be digest:USER:PASSWORD")
                digests = (DigestAuth(user, password),)
            else:
                other = ((scheme, credential),)
        tls_options = None
        if tls or tls_ca or tls_cert or tls_key or tls_no_verify_hostname:
            tls_options = TlsOptions(
                ca_file=tls_ca or None,
                cert_file=tls_cert or None,
                key_file=tls_key or None,
                check_hostname=not tls_no_verify_hostname,
            )
        sasl = None
        if sasl_user is not None:
            password = os.environ.get(SASL_PASSWORD_ENV, "")
            if not password:
                raise ConfigurationError(
                    f"--sasl-user needs the password in the environment variable "
                    f"{SASL_PASSWORD_ENV} (it is never taken from the command line)"
                )
            sasl = SaslOptions(sasl_user, password)
        acl = None
        if acl_writers:
            writers: list[DigestAuth | str] = []
            for writer in acl_writers:
                if writer == "self":
                    if not digests and sasl is None:
                        raise ConfigurationError(
                            "--acl-writer self needs --auth digest:USER:PASSWORD or --sasl-user"
                        )
                    writers.extend(digests)
                    if sasl is not None:
                        writers.append(sasl.acl_id)
                else:
                    writers.append(writer)
            acl = ElectionAcl(writers, others_may_read=not acl_no_read)
        elif acl_no_read:
            raise ConfigurationError("--acl-no-read needs --acl-writer")
        return ClientSecurity(auth=digests, acl=acl, tls=tls_options, sasl=sasl, other_auth=other)
    except ConfigurationError as exc:
        message = str(exc)
        for api, flag in (
            ("TlsOptions.ca_file", "--tls-ca"),
            ("TlsOptions.cert_file", "--tls-cert"),
            ("TlsOptions.key_file", "--tls-key"),
            ("TlsOptions: give cert_file and key_file together", "give --tls-cert and --tls-key "
             "together"),
            ("SaslOptions.username", "--sasl-user"),
            ("DigestAuth.username", "--auth user"),
            ("DigestAuth.password", "--auth password"),
        ):
            message = message.replace(api, flag)
        raise UsageError(message) from None


@contextmanager
def connected_client(
    hosts: str, timeout: float = 10.0, security: ClientSecurity | None = None
) -> Iterator[KazooClient]:
    """A started (and authenticated) KazooClient, stopped on exit, or a one-line error."""
    try:
        validate_connect_string(hosts)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    options = security.kazoo() if security is not None else {}
    client = KazooClient(hosts=hosts, timeout=max(timeout, 4.0), **options)
    try:
        start_client(client, timeout, hosts)  # typed errors: TLS, SASL refused, no quorum
    except ConnectionFailedError as exc:
        if type(exc) is not ConnectionFailedError:
            raise  # a TLSError says exactly what is wrong
        tls_hint = "" if security is not None and security.tls else "; TLS ports need --tls-ca"
        raise ConnectionFailedError(
            f"no ZooKeeper quorum answered at {hosts} within {timeout:g}s (check --hosts / "
            f"ZKELECT_HOSTS and that a majority of members is up{tls_hint})"
        ) from None
    try:
        if client.chroot and client.exists("/") is None:
            raise ChrootMissingError(f"the chroot {client.chroot} does not exist on {hosts}")
        yield client
    finally:
        client.stop()
        client.close()


def echo_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, sort_keys=False) + "\n")
    sys.stdout.flush()
