"""Connecting a KazooClient with a verdict: why it failed, as a typed error, and soon.

kazoo retries every failed connection attempt until its caller gives up, so a client that can
never connect (a certificate the CA did not sign, a hostname the certificate does not name,
plaintext sent to a TLS port, a wrong SASL password) looks exactly like an ensemble that is
down: a timeout. ``start_client`` watches each attempt instead and ends the wait early with:

* ``TLSError`` once every member failed the TLS handshake for the same kind of reason
  (certificate not trusted, hostname mismatch, a TLS client on a plaintext port, or a
  plaintext client on a port that answers TLS: probed with a handshake of our own);
* ``PermissionDeniedError`` as soon as SASL authentication is refused (not retried);
* under :func:`command_line_audience` (the ``zkelect`` command), ``MembersUnreachableError``
  (a ConnectionFailedError) at once when every member refused the connection or has a name
  that does not resolve, naming each and why: the command should not wait out its timeout
  on a wrong --hosts. (A library client keeps waiting: an ensemble may be starting.)
* ``ConnectionFailedError`` at the deadline otherwise, naming the last error seen.

Messages name the Python keywords (``tls=``) for the library's users, and the ``zkelect``
command's flags (``--tls-ca``) under :func:`command_line_audience`.

Each attempt is seen through hooks.py (kazoo keeps them to itself); the verdicts are here.

``TlsHandler`` is kazoo's threading handler with one change: TLS connections use the
``ssl.SSLContext`` it was given (``TlsOptions.ssl_context()``), built once, instead of kazoo's
per-connection context that also trusts every system CA and leaves hostname checking off.
"""

from __future__ import annotations

import errno
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kazoo.exceptions import AuthFailedError, SASLException, SessionClosedRequireSaslError
from kazoo.handlers.threading import SequentialThreadingHandler
from kazoo.protocol.connection import ConnectionDropped

from zkelect._zookeeper.hooks import sasl_options, watch_connect_attempts
from zkelect.errors import ConnectionFailedError, PermissionDeniedError, TLSError

__all__ = ["MembersUnreachableError", "TlsHandler", "command_line_audience", "start_client"]

_PROBE_TIMEOUT = 1.0
_WATCH_ATTRIBUTE = "_zkelect_connect_watch"
_NOT_TLS_REASONS = (
    "WRONG_VERSION_NUMBER",
    "RECORD_LAYER_FAILURE",
    "UNKNOWN_PROTOCOL",
    "PACKET_LENGTH_TOO_LONG",
    "HTTP_REQUEST",
)
_CLIENT_CERT_REASONS = ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "HANDSHAKE_FAILURE")
# getaddrinfo's answers that retrying will not change (EAI_AGAIN, a DNS server that did not
# answer, may: it is waited out like a member that does not answer).
_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
_audience = {"command_line": False}


class MembersUnreachableError(ConnectionFailedError):
    """Every member refused the connection or has a name that does not resolve: the
    message says which and why (not a quorum that is slow to answer)."""


@contextmanager
def command_line_audience() -> Iterator[None]:
    """While the ``zkelect`` command runs: messages name its flags instead of the Python
    keywords, and a connection that every member refuses (or whose names none resolve)
    fails at once (MembersUnreachableError) instead of at the deadline."""
    previous = _audience["command_line"]
    _audience["command_line"] = True
    try:
        yield
    finally:
        _audience["command_line"] = previous


def _say(api: str, cli: str) -> str:
    """How to fix it, in the words of whoever reads it: ``api`` (``tls=...``) for the
    library, ``cli`` (``--tls-ca``) for the zkelect command."""
    return cli if _audience["command_line"] else f"{api} (CLI: {cli})"


class TlsHandler(SequentialThreadingHandler):  # type: ignore[misc]
    """kazoo's threading handler, making TLS connections with one given SSLContext."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self.ssl_context = context

    def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        address = kwargs.pop("address", args[0] if args else None)
        if not kwargs.get("use_ssl"):
            return super().create_connection(address, *args[1:], **kwargs)
        hostname = kwargs.get("hostname")
        timeout = kwargs.get("timeout")
        # kazoo passes the connect string's host; its four-letter-word helper passes a port.
        server_name = hostname if isinstance(hostname, str) and hostname else str(address[0])
        raw = socket.create_connection(address, timeout)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return self.ssl_context.wrap_socket(raw, server_hostname=server_name)
        except BaseException:
            raw.close()
            raise


def _speaks_tls(address: tuple[str, int]) -> bool:
    """Whether ``address`` completes a TLS handshake (nothing verified: only asking)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection(address, _PROBE_TIMEOUT) as raw,
            context.wrap_socket(raw) as tls,
        ):
            return tls.version() is not None
    except (OSError, ValueError):
        return False


class _ConnectWatch:
    """Notes the outcome of every connection attempt of one client (kazoo's thread)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.fatal: Exception | None = None
        self.last_error = ""
        self._tls_failures: dict[tuple[str, int], str] = {}
        # This round's addresses, and why each unreachable one is (refused, no such name).
        self._round: set[tuple[str, str, int]] = set()
        self._unresolved: dict[tuple[str, int], str] = {}
        self._refused: dict[tuple[str, str, int], str] = {}
        self.probing = False

    def begin(self) -> None:
        with self._lock:
            self.connected.clear()
            self.fatal = None
            self.last_error = ""
            self._tls_failures.clear()
            self._round.clear()
            self._unresolved.clear()
            self._refused.clear()
            self.probing = True

    def end(self) -> None:
        self.probing = False

    def succeeded(self) -> None:
        with self._lock:
            self._tls_failures.clear()
            self._refused.clear()
        self.connected.set()

    def round_started(
        self, addresses: list[tuple[str, str, int]], unresolved: list[tuple[str, int]]
    ) -> None:
        """kazoo is about to try ``addresses``; the ``unresolved`` members it skips."""
        if not _audience["command_line"]:
            return  # only the command line acts on it: no lookups of our own otherwise
        names = {member: _no_such_name(*member) for member in unresolved}
        with self._lock:
            self._round = set(addresses)
            self._refused = {a: why for a, why in self._refused.items() if a in self._round}
            self._unresolved = {m: why for m, why in names.items() if why is not None}
            self._check_unreachable(final=not addresses)

    def _unreachable_text(self) -> str | None:
        """What every member did, when each one refused or has a name that does not
        resolve (nothing is listening there, or the name is wrong); else None."""
        members = {(str(h).strip(), int(p)) for h, p in self._client.hosts}
        tried = {(host, port) for host, _, port in self._round}
        if not members <= tried | set(self._unresolved) or not self._round <= set(self._refused):
            return None
        parts = [*self._refused.values(), *self._unresolved.values()]
        return (  # said to the command line only
            f"could not connect to ZooKeeper: {'; '.join(sorted(set(parts)))} (check the host "
            "names and ports in --hosts / ZKELECT_HOSTS, and that ZooKeeper listens there)"
        )

    def _check_unreachable(self, *, final: bool = True) -> None:
        """End the wait once no member is reachable (the command line's audience only)."""
        if not final:
            return
        text = self._unreachable_text()
        if text is not None:
            self._set_fatal(MembersUnreachableError(text), locked=True)

    def failed(self, exc: Exception, host: str, hostip: str, port: int) -> Exception | None:
        """Note a failed attempt; return an exception for kazoo to raise instead, if any."""
        cause: BaseException = exc
        if isinstance(exc, ConnectionDropped) and exc.__context__ is not None:
            cause = exc.__context__
        where = f"{host}:{port}"
        self.last_error = f"{where}: {cause}"
        self._note_refused(cause, (host, hostip, port))
        if isinstance(exc, (AuthFailedError, SessionClosedRequireSaslError, SASLException)):
            self._set_fatal(PermissionDeniedError(self._auth_message(exc, where)))
            # kazoo stops reconnecting on AuthFailedError (and dies on the others).
            replacement: Exception = exc if isinstance(exc, AuthFailedError) else AuthFailedError()
            return replacement
        if isinstance(cause, ssl.SSLError):
            self._tls_failed((host, port), self._tls_message(cause, where))
        elif (
            self.probing
            and not self._client.use_ssl
            and not (isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED)
            and _speaks_tls((hostip, port))
        ):
            self._tls_failed(
                (host, port),
                f"{where} speaks TLS (it is a secureClientPort) but this client sent plaintext: "
                + _say("set tls=TlsOptions(ca_file=...)", "pass --tls-ca FILE")
                + ", or use the plaintext clientPort",
            )
        return None

    def _note_refused(self, cause: BaseException, address: tuple[str, str, int]) -> None:
        if not _audience["command_line"]:
            return
        with self._lock:
            if isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED:
                host, _, port = address
                self._refused[address] = (
                    f"{host}:{port} refused the connection ({cause.strerror or cause})"
                )
                self._check_unreachable()
            else:
                self._refused.pop(address, None)

    def _auth_message(self, exc: Exception, where: str) -> str:
        sasl = sasl_options(self._client)
        if isinstance(exc, SASLException):
            return f"SASL authentication could not run ({exc}): pip install 'zkelect[sasl]'"
        if sasl is None:
            return (
                f"ZooKeeper at {where} requires SASL authentication (enforce.auth): "
                + _say(
                    "set sasl=SaslOptions(user, password)",
                    "pass --sasl-user, password in ZKELECT_SASL_PASSWORD",
                )
                + "; not retried"
            )
        return (
            f"ZooKeeper at {where} refused SASL {sasl.get('mechanism', '')} authentication "
            f"of user {sasl.get('username')!r}: wrong username or password, or the user is "
            "not in the servers' JAAS file; not retried"
        )

    def _tls_message(self, error: ssl.SSLError, where: str) -> str:
        if isinstance(error, ssl.SSLCertVerificationError):
            why = str(error.verify_message or error.reason or error)
            if "mismatch" in why.lower() or "hostname" in why.lower():
                return (
                    f"TLS: the certificate of {where} does not name that host ({why}): "
                    "connect with a host name the certificate lists, or reissue it; "
                    "switching the check off ("
                    + _say("TlsOptions(check_hostname=False)", "--tls-no-verify-hostname")
                    + ") lets any holder of a CA-signed certificate impersonate the ensemble"
                )
            ca = self._client.ca
            given = f"--tls-ca {ca}" if _audience["command_line"] else f"ca_file={ca}"
            return (
                f"TLS: the certificate of {where} is not trusted ({why}): pass the CA that "
                f"signed the servers' certificates"
                + (f" ({given} did not)" if ca else f" ({_say('ca_file', '--tls-ca')})")
            )
        reason = str(error.reason or "")
        if reason in _NOT_TLS_REASONS:
            return (
                f"TLS: {where} does not speak TLS ({reason}): it looks like a plaintext "
                "clientPort; connect to the secureClientPort, or drop "
                + _say("tls=", "--tls and --tls-ca")
            )
        if reason == "UNEXPECTED_EOF_WHILE_READING" or isinstance(error, ssl.SSLEOFError):
            return (
                f"TLS: {where} closed the connection during the TLS handshake: it is probably "
                "a plaintext clientPort (connect to the secureClientPort, or drop "
                + _say("tls=", "--tls and --tls-ca")
                + "), or it requires a client certificate ("
                + _say("TlsOptions(cert_file=..., key_file=...)", "--tls-cert/--tls-key")
                + ")"
            )
        if any(r in reason for r in _CLIENT_CERT_REASONS):
            return (
                f"TLS: {where} refused the handshake ({reason}): it may require a client "
                "certificate signed by a CA it trusts ("
                + _say("TlsOptions(cert_file=..., key_file=...)", "--tls-cert/--tls-key")
                + ")"
            )
        return f"TLS handshake with {where} failed: {error}"

    def _tls_failed(self, address: tuple[str, int], message: str) -> None:
        with self._lock:
            self._tls_failures[address] = message
            members = {(str(h), int(p)) for h, p in self._client.hosts}
            if members <= set(self._tls_failures):
                others = len(members) - 1
                suffix = f" (and the same for {others} other member(s))" if others else ""
                self._set_fatal(TLSError(message + suffix), locked=True)

    def _set_fatal(self, error: Exception, *, locked: bool = False) -> None:
        if locked:
            self.fatal = self.fatal or error
        else:
            with self._lock:
                self.fatal = self.fatal or error
        self.connected.set()  # wake the waiter


def _no_such_name(host: str, port: int) -> str | None:
    """Why ``host`` does not resolve, if retrying will not change that (kazoo only logs it)."""
    try:
        socket.getaddrinfo(host, port, 0, 0, socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        if exc.errno in _NO_SUCH_NAME:
            return f"{host}:{port}: the name does not resolve ({exc.strerror or exc})"
    except (OSError, UnicodeError):
        pass
    return None


def _watch(client: Any) -> _ConnectWatch:
    watch = getattr(client, _WATCH_ATTRIBUTE, None)
    if isinstance(watch, _ConnectWatch):
        return watch
    watch = _ConnectWatch(client)
    watch_connect_attempts(client, watch.failed, watch.succeeded, watch.round_started)
    setattr(client, _WATCH_ATTRIBUTE, watch)
    return watch


def start_client(client: Any, timeout: float, hosts: str) -> None:
    """Start ``client`` and wait until its session is established *and* authenticated.

    On failure the client is stopped and closed, and a typed error says why (see the module
    docstring): TLSError, PermissionDeniedError or ConnectionFailedError.
    """
    watch = _watch(client)
    watch.begin()
    try:
        client.start_async()
        done = watch.connected.wait(timeout)
    finally:
        watch.end()
    if done and watch.fatal is None:
        return
    client.stop()
    client.close()
    if watch.fatal is not None:
        raise watch.fatal
    last = f" (last error: {watch.last_error})" if watch.last_error else ""
    tls_hint = (
        ""
        if client.use_ssl
        else "; if these are TLS ports (secureClientPort), " + _say("set tls=", "pass --tls-ca")
    )
    raise ConnectionFailedError(
        f"could not connect to ZooKeeper at {hosts} within {timeout:g}s{last}: check that a "
        f"quorum is up and reachable{tls_hint}"
    )
