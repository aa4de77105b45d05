"""The security options of every ``zkelect`` command that connects, declared once.

A command asks for them with a keyword-only ``security: ClientSecurity`` parameter and one
decorator under ``@app.command``:

* ``@with_security``: --auth, --tls, --tls-ca, --tls-cert, --tls-key,
  --tls-no-verify-hostname and --sasl-user (status, watch, resign, exporter, doctor);
* ``@with_candidate_security``: those and --acl-writer, --acl-no-read, for the commands
  that join an election and may create its path (run, serve).

The decorator shows typer these options in place of the ``security`` parameter (so
``zkelect CMD --help`` lists them, in its "Security" panel, with the same names and help
everywhere) and calls the command with them checked and built into one ClientSecurity.
Each option is checked where it is read, below, in the command line's own words: a bad one
is a UsageError (one line, exit 2) that names the option and what is wrong with it.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer

from zkelect.errors import ConfigurationError
from zkelect.ops.cli.common import UsageError
from zkelect.security import ClientSecurity, DigestAuth, ElectionAcl, SaslOptions, TlsOptions

__all__ = [
    "SASL_PASSWORD_ENV",
    "client_security",
    "with_candidate_security",
    "with_security",
]

SASL_PASSWORD_ENV = "ZKELECT_SASL_PASSWORD"
_PANEL = "Security"  # the help panel every connecting command shows these options in

_Auth = Annotated[
    str | None,
    typer.Option(
        "--auth",
        envvar="ZKELECT_AUTH",
        metavar="SCHEME:CREDENTIAL",
        help="Authenticate the session, e.g. 'digest:user:password'.",
        show_default=False,
        rich_help_panel=_PANEL,
        show_envvar=True,
    ),
]
_Tls = Annotated[
    bool,
    typer.Option(
        "--tls",
        envvar="ZKELECT_TLS",
        help="Connect with TLS (to the servers' secureClientPort), trusting the system CAs "
        "unless --tls-ca is given (implied by --tls-ca). Certificates and host names are "
        "verified.",
        rich_help_panel=_PANEL,
        show_envvar=True,
    ),
]
_TlsCa = Annotated[
    str | None,
    typer.Option(
        "--tls-ca",
        envvar="ZKELECT_TLS_CA",
        metavar="FILE",
        help="PEM file of the CA(s) that sign the servers' certificates; only these are "
        "trusted. Implies --tls.",
        show_default=False,
        rich_help_panel=_PANEL,
        show_envvar=True,
    ),
]
_TlsCert = Annotated[
    str | None,
    typer.Option(
        "--tls-cert",
        envvar="ZKELECT_TLS_CERT",
        metavar="FILE",
        help="PEM client certificate, for servers that require one (with --tls-key).",
        show_default=False,
        rich_help_panel=_PANEL,
        show_envvar=True,
    ),
]
_TlsKey = Annotated[
    str | None,
    typer.Option(
        "--tls-key",
        envvar="ZKELECT_TLS_KEY",
        metavar="FILE",
        help="PEM private key of --tls-cert (unencrypted).",
        show_default=False,
        rich_help_panel=_PANEL,
        show_envvar=True,
    ),
]
_TlsNoVerifyHostname = Annotated[
    bool,
    typer.Option(
        "--tls-no-verify-hostname",
        envvar="ZKELECT_TLS_NO_VERIFY_HOSTNAME",
        help="Do not check that the server's certificate names the host connected to "
        "(insecure: any holder of a certificate from the CA can impersonate the ensemble).",
        rich_help_panel=_PANEL,
        show_envvar=True,
    ),
]
_SaslUser = Annotated[
    str | None,
    typer.Option(
        "--sasl-user",
        envvar="ZKELECT_SASL_USER",
        metavar="USER",
        help=f"Authenticate with SASL DIGEST-MD5 as USER; the password is read from the "
        f"environment variable {SASL_PASSWORD_ENV}, never from the command line.",
        show_default=False,
        rich_help_panel=_PANEL,
        show_envvar=True,
    ),
]
_AclWriter = Annotated[
    list[str] | None,
    typer.Option(
        "--acl-writer",
        envvar="ZKELECT_ACL_WRITER",
        metavar="IDENTITY",
        help="Create the election path (and its missing parents) with an ACL that lets only "
        "these identities join: 'digest:USER:HASH', 'sasl:USER', or 'self' for this "
        "candidate's --auth / --sasl-user identity. Repeat for more (in the environment "
        "variable: separated by blanks).",
        show_default=False,
        rich_help_panel=_PANEL,
        show_envvar=True,
    ),
]
_AclNoRead = Annotated[
    bool,
    typer.Option(
        "--acl-no-read",
        envvar="ZKELECT_ACL_NO_READ",
        help="With --acl-writer: others may not even read the election (default: they may).",
        rich_help_panel=_PANEL,
        show_envvar=True,
    ),
]

# Parameter name (a keyword of client_security) -> (its typer annotation, its default).
_CONNECTION_OPTIONS: dict[str, tuple[Any, Any]] = {
    "auth": (_Auth, None),
    "tls": (_Tls, False),
    "tls_ca": (_TlsCa, None),
    "tls_cert": (_TlsCert, None),
    "tls_key": (_TlsKey, None),
    "tls_no_verify_hostname": (_TlsNoVerifyHostname, False),
    "sasl_user": (_SaslUser, None),
}
_ACL_OPTIONS: dict[str, tuple[Any, Any]] = {
    "acl_writers": (_AclWriter, None),
    "acl_no_read": (_AclNoRead, False),
}

Command = TypeVar("Command", bound=Callable[..., Any])


def with_security(command: Command) -> Command:
    """Give ``command`` the connection's security options (see the module docstring)."""
    return _with_options(command, _CONNECTION_OPTIONS, candidate=False)


def with_candidate_security(command: Command) -> Command:
    """The security options and the election path's ACL options, for a candidate."""
    return _with_options(command, {**_CONNECTION_OPTIONS, **_ACL_OPTIONS}, candidate=True)


def _with_options(
    command: Command, options: dict[str, tuple[Any, Any]], *, candidate: bool
) -> Command:
    """``command`` as typer sees it: ``options`` in place of its ``security`` parameter.

    Typer reads a command's options from its signature (``__signature__`` when set) and its
    annotations, and calls it with keyword arguments: so the wrapper shows it the options
    and turns the values it gets back into the one ``security`` argument."""
    signature = inspect.signature(command, eval_str=True)
    if signature.parameters.get("security") is None:
        raise TypeError(f"{command.__name__} needs a keyword-only 'security' parameter")
    params = [p for p in signature.parameters.values() if p.name != "security"]
    params += [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint)
        for name, (hint, default) in options.items()
    ]

    @functools.wraps(command)
    def with_security_built(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in options}
        security = client_security(**given, candidate=candidate)
        return command(*args, security=security, **kwargs)

    with_security_built.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=params
    )
    with_security_built.__annotations__ = {
        **{p.name: p.annotation for p in params},
        "return": signature.return_annotation,
    }
    return cast(Command, with_security_built)


# -- checking and building ------------------------------------------------------------------


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
    candidate: bool = False,
) -> ClientSecurity:
    """The security options of a command line, checked; a UsageError names a bad one.

    ``candidate``: for a command that joins the election, whose --auth must be a digest
    (the identity its node and the path's ACL name)."""
    digests, other = _auth(auth)
    if candidate and other:
        raise UsageError(
            f"--auth: a candidate authenticates with digest:USER:PASSWORD only, not "
            f"{other[0][0]}:..."
        )
    tls_options = _tls(tls, tls_ca, tls_cert, tls_key, tls_no_verify_hostname)
    sasl = _sasl(sasl_user)
    acl = _acl(acl_writers or [], acl_no_read, digests, sasl)
    return ClientSecurity(auth=digests, acl=acl, tls=tls_options, sasl=sasl, other_auth=other)


@contextmanager
def _option(name: str) -> Iterator[None]:
    """What the library still finds wrong with an option's value (the checks below come
    first), as a usage error that starts with the option's name."""
    try:
        yield
    except ConfigurationError as exc:
        raise UsageError(f"{name}: {exc}") from None


def _auth(auth: str | None) -> tuple[tuple[DigestAuth, ...], tuple[tuple[str, str], ...]]:
    """(digest credentials, other schemes' credentials) of --auth."""
    if not auth:
        return (), ()
    scheme, sep, credential = auth.partition(":")
    if not sep or not scheme or not credential:
        raise UsageError(
            f"--auth must be SCHEME:CREDENTIAL, e.g. digest:user:password; got {auth!r}"
        )
    if scheme != "digest":
        return (), ((scheme, credential),)
    user, sep, password = credential.partition(":")
    if not sep:
        raise UsageError("--auth digest:... must be digest:USER:PASSWORD")
    if not user or not password:
        raise UsageError("--auth digest:USER:PASSWORD needs a non-empty USER and PASSWORD")
    with _option("--auth"):
        return (DigestAuth(user, password),), ()


def _tls(
    tls: bool, ca: str | None, cert: str | None, key: str | None, no_verify_hostname: bool
) -> TlsOptions | None:
    if not (tls or ca or cert or key or no_verify_hostname):
        return None
    given = {"--tls-ca": ca, "--tls-cert": cert, "--tls-key": key}
    for name, value in given.items():
        if value:
            _readable(name, value)
    if bool(cert) != bool(key):
        raise UsageError(
            "give --tls-cert and --tls-key together (a client certificate needs its key), "
            "or neither"
        )
    with _option(", ".join(name for name, value in given.items() if value) or "--tls"):
        return TlsOptions(
            ca_file=ca or None,
            cert_file=cert or None,
            key_file=key or None,
            check_hostname=not no_verify_hostname,
        )


def _readable(name: str, value: str) -> None:
    path = Path(value)
    if not path.is_file():
        raise UsageError(f"{name}: no such file: {value!r}")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UsageError(f"{name}: cannot read {value!r}: {exc.strerror or exc}") from None


def _sasl(user: str | None) -> SaslOptions | None:
    if user is None:
        return None
    if not user:
        raise UsageError("--sasl-user must not be empty")
    password = os.environ.get(SASL_PASSWORD_ENV, "")
    if not password:
        raise UsageError(
            f"--sasl-user needs the password in the environment variable "
            f"{SASL_PASSWORD_ENV} (it is never taken from the command line)"
        )
    with _option("--sasl-user"):
        return SaslOptions(user, password)


def _acl(
    writers: list[str],
    no_read: bool,
    digests: tuple[DigestAuth, ...],
    sasl: SaslOptions | None,
) -> ElectionAcl | None:
    if not writers:
        if no_read:
            raise UsageError("--acl-no-read needs --acl-writer")
        return None
    identities: list[DigestAuth | str] = []
    for writer in writers:
        if writer != "self":
            identities.append(writer)
            continue
        if not digests and sasl is None:
            raise UsageError("--acl-writer self needs --auth digest:USER:PASSWORD or --sasl-user")
        identities.extend(digests)
        if sasl is not None:
            identities.append(sasl.acl_id)
    with _option("--acl-writer"):
        return ElectionAcl(identities, others_may_read=not no_read)
