"""Gathering: what the members answer to four-letter words, and what one read-only
session sees (``/zookeeper/config``, the election path's ACL, children and stat)."""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

from zkelect._zookeeper.admin_reads import read_deployment
from zkelect._zookeeper.words import NOT_SERVING, MemberSilent, WordNotAllowed, four_letter_word
from zkelect._zookeeper.words import server_mode as parse_mode
from zkelect.config import format_member, split_connect_string
from zkelect.ops.doctor.model import AclView, MemberView, Observation, SequenceView
from zkelect.ops.doctor.parse import ServerEntry, parse_conf, parse_membership
from zkelect.security import ClientSecurity

__all__ = ["observe", "probe_member"]

_log = logging.getLogger(__name__)


def _ask(
    address: tuple[str, int], word: str, timeout: float, tls: ssl.SSLContext | None = None
) -> tuple[str, str]:
    """One four-letter word: ``("answer", text)``, ``("refused", text)`` (not whitelisted),
    ``("down", why)``. With ``tls``, over TLS (a secureClientPort answers them too)."""
    try:
        text = four_letter_word(address, word, timeout=timeout, tls=tls)
    except WordNotAllowed as exc:
        return "refused", exc.answer.strip()
    except MemberSilent as exc:
        return "down", exc.reason
    if not text:  # srvr, mntr and conf always say something
        return "down", "closed the connection without answering (a TLS-only port?)"
    return "answer", text


def _local_addresses(host: str, port: int) -> tuple[bool, str]:
    """Whether ``host`` names this machine: it resolves to an address this host can bind."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True, ""
    own = {socket.gethostname().lower()}
    with contextlib.suppress(OSError):
        own.add(socket.getfqdn().lower())
    if host.lower() in own:
        return True, ""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return False, str(exc.args[-1] if exc.args else exc)
    for family, _, _, _, sockaddr in infos:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.bind((sockaddr[0], 0, *sockaddr[2:]))  # only local addresses bind
                return True, ""
        except OSError as exc:
            if exc.errno != errno.EADDRNOTAVAIL:
                _log.debug("bind test of %s failed: %s", sockaddr[0], exc)
    return False, ""


def probe_member(
    host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None
) -> MemberView:
    """Ask one member ``srvr`` and ``conf`` (``mntr`` if ``srvr`` is refused)."""
    address = format_member(host, port)
    local, resolve_error = _local_addresses(host, port)
    kind, text = _ask((host, port), "srvr", timeout, tls)
    refused: list[str] = []
    if kind == "down":
        return MemberView(address, "down", text, local=local, resolve_error=resolve_error)
    if kind == "refused":
        refused.append("srvr")
        kind, text = _ask((host, port), "mntr", timeout, tls)
        if kind == "refused":
            refused.append("mntr")
    if kind == "down":
        return MemberView(
            address, "down", text, tuple(refused), local=local, resolve_error=resolve_error
        )
    if kind == "refused":
        state = "unknown"
    elif NOT_SERVING in text:
        state = "not serving"
    else:
        state = parse_mode(text) or "unknown"
    settings = None
    if state != "not serving":
        kind, conf = _ask((host, port), "conf", timeout, tls)
        if kind == "refused":
            refused.append("conf")
        elif kind == "answer" and NOT_SERVING not in conf:
            settings = parse_conf(conf)
    error = "it has no quorum" if state == "not serving" else ""
    return MemberView(address, state, error, tuple(refused), settings, local, resolve_error)


def _read_path(
    hosts: str,
    path: str | None,
    timeout: float,
    auth: tuple[str, str] | None,
    security: ClientSecurity | None = None,
) -> tuple[bool, str, tuple[ServerEntry, ...], AclView | None, SequenceView | None]:
    reads = read_deployment(hosts, path, timeout, auth, security)
    if not reads.connected:
        return False, reads.error, (), None, None
    membership = () if reads.config is None else parse_membership(reads.config)
    if path is None or reads.acl is None or reads.children is None:
        return True, "", membership, None, None
    acl = AclView(path, reads.acl.status, reads.acl.entries, reads.acl.error)
    got = reads.children
    read_at_ms = int(time.time() * 1000) if got.status == "ok" else 0
    sequence = SequenceView(
        path, got.status, got.children, got.cversion, got.num_children, got.ctime_ms,
        read_at_ms, got.error,
    )  # fmt: skip
    return True, "", membership, acl, sequence


def observe(
    hosts: str,
    path: str | None = None,
    *,
    timeout: float = 5.0,
    auth: tuple[str, str] | None = None,
    security: ClientSecurity | None = None,
) -> Observation:
    """Look at the deployment (read-only): four-letter words to every member of ``hosts``
    in parallel, then one session for ``/zookeeper/config``, ``path``'s ACL and its children.

    ``auth``: ``(scheme, credential)`` for the session, e.g. ``("digest", "user:pw")``;
    ``security``: TLS, SASL and digest options for the session (and TLS for the words).
    Bounded: about ``3 * timeout`` for the words (each member in its own thread) plus
    ``timeout`` for the session.
    """
    pairs, _chroot = split_connect_string(hosts)
    unique = list(dict.fromkeys(pairs))
    with ThreadPoolExecutor(max_workers=len(unique), thread_name_prefix="zkelect-doctor") as ex:
        tls = security.tls.ssl_context() if security is not None and security.tls else None
        members = tuple(ex.map(lambda hp: probe_member(hp[0], hp[1], timeout, tls), unique))
    if all(m.state in ("down", "not serving") for m in members):
        return Observation(hosts, members, path, None, "no member serves")
    connected, error, membership, acl, sequence = _read_path(hosts, path, timeout, auth, security)
    return Observation(hosts, members, path, connected, error, membership, acl, sequence)
