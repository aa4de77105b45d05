"""Connecting a KazooClient with a verdict: why it failed, as a typed error, and soon.

kazoo retries every failed connection attempt until its caller gives up, so a client that can
never connect (a certificate the CA did not sign, a hostname the certificate does not name,
plaintext sent to a TLS port, a wrong SASL password) looks exactly like an ensemble that is
down: a timeout. ``start_client`` watches each attempt instead and ends the wait early with:

* ``TLSError`` once every member failed the TLS handshake for the same kind of reason
  (certificate not trusted, hostname mismatch, a TLS client on a plaintext port, or a
  plaintext client on a port that answers TLS: probed with a handshake of our own);
* ``PermissionDeniedError`` as soon as SASL authentication is refused (not retried);
* ``ConnectionFailedError`` at the deadline otherwise, naming the last error seen.

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
from typing import Any

from kazoo.exceptions import AuthFailedError, SASLException, SessionClosedRequireSaslError
from kazoo.handlers.threading import SequentialThreadingHandler
from kazoo.protocol.connection import ConnectionDropped

from zkelect._zookeeper.hooks import sasl_options, watch_connect_attempts
from zkelect.errors import ConnectionFailedError, PermissionDeniedError, TLSError

__all__ = ["TlsHandler", "start_client"]

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
        self.probing = False

    def begin(self) -> None:
        with self._lock:
            self.connected.clear()
            self.fatal = None
            self.last_error = ""
            self._tls_failures.clear()
            self.probing = True

    def end(self) -> None:
        self.probing = False

    def succeeded(self) -> None:
        with self._lock:
            self._tls_failures.clear()
        self.connected.set()

    def failed(self, exc: Exception, host: str, hostip: str, port: int) -> Exception | None:
        """Note a failed attempt; return an exception for kazoo to raise instead, if any."""
        cause: BaseException = exc
        if isinstance(exc, ConnectionDropped) and exc.__context__ is not None:
            cause = exc.__context__
        where = f"{host}:{port}"
        self.last_error = f"{where}: {cause}"
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
                "set tls=TlsOptions(ca_file=...) (CLI: --tls-ca FILE), or use the "
                "plaintext clientPort",
            )
        return None

    def _auth_message(self, exc: Exception, where: str) -> str:
        sasl = sasl_options(self._client)
        if isinstance(exc, SASLException):
            return f"SASL authentication could not run ({exc}): pip install 'zkelect[sasl]'"
        if sasl is None:
            return (
                f"ZooKeeper at {where} requires SASL authentication (enforce.auth): set "
                "sasl=SaslOptions(user, password) (CLI: --sasl-user, password in "
                "ZKELECT_SASL_PASSWORD); not retried"
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
                    "switching the check off (TlsOptions(check_hostname=False), CLI "
                    "--tls-no-verify-hostname) lets any holder of a CA-signed certificate "
                    "impersonate the ensemble"
                )
            ca = self._client.ca
            return (
                f"TLS: the certificate of {where} is not trusted ({why}): pass the CA that "
                f"signed the servers' certificates"
                + (f" (ca_file={ca} did not)" if ca else " (ca_file / --tls-ca)")
            )
        reason = str(error.reason or "")
        if reason in _NOT_TLS_REASONS:
            return (
                f"TLS: {where} does not speak TLS ({reason}): it looks like a plaintext "
                "clientPort; connect to the secureClientPort, or drop tls="
            )
        if reason == "UNEXPECTED_EOF_WHILE_READING" or isinstance(error, ssl.SSLEOFError):
            return (
                f"TLS: {where} closed the connection during the TLS handshake: it is probably "
                "a plaintext clientPort (connect to the secureClientPort, or drop tls=), or "
                "it requires a client certificate (TlsOptions(cert_file=..., key_file=...))"
            )
        if any(r in reason for r in _CLIENT_CERT_REASONS):
            return (
                f"TLS: {where} refused the handshake ({reason}): it may require a client "
                "certificate signed by a CA it trusts (TlsOptions(cert_file=..., key_file=...), "
                "CLI --tls-cert/--tls-key)"
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


def _watch(client: Any) -> _ConnectWatch:
    watch = getattr(client, _WATCH_ATTRIBUTE, None)
    if isinstance(watch, _ConnectWatch):
        return watch
    watch = _ConnectWatch(client)
    watch_connect_attempts(client, watch.failed, watch.succeeded)
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
        else "; if these are TLS ports (secureClientPort), set tls= (CLI: --tls-ca)"
    )
    raise ConnectionFailedError(
        f"could not connect to ZooKeeper at {hosts} within {timeout:g}s{last}: check that a "
        f"quorum is up and reachable{tls_hint}"
    )
