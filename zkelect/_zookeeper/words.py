"""The four-letter-word client: one word to one ZooKeeper member, within a deadline.

A member answers a four-letter word (``srvr``, ``conf``, ``mntr``, ``ruok``, ``wchp``...)
sent on its client port with text, then closes the connection. It answers only the words
in its ``4lw.commands.whitelist``; any other gets a sentence saying so. A plain socket (TLS
on a secureClientPort), no session: it works whatever state the member is in, also when
it serves no clients (no quorum), which is what doctor, the ensemble tooling and the
tests need to see.

Every failure is typed: :class:`WordNotAllowed` (the member answered, but not this word),
:class:`MemberSilent` (no answer: refused, no connection in time, connected but silent, a
socket error), ConfigurationError for a malformed word (before anything is sent).
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
from dataclasses import dataclass

from zkelect.config import format_member
from zkelect.errors import ConfigurationError, ConnectionFailedError

__all__ = [
    "NOT_SERVING",
    "ClientConnection",
    "MemberSilent",
    "WordNotAllowed",
    "connections",
    "four_letter_word",
    "parse_cons",
    "server_mode",
]

#: What a member that is up but has no quorum answers to most words (``mntr``, ``conf``...).
NOT_SERVING = "This ZooKeeper instance is not currently serving requests"
_NOT_WHITELISTED = "is not executed because it is not in the whitelist"
_WORD = re.compile(r"[a-z]{4}")
# One ``cons`` line: `` /10.0.0.7:51314[1](queued=0,...,sid=0x300023ff9790000,...)``; the
# address is Java's InetSocketAddress text (``host/ip:port``, the host part often empty).
_CONS_LINE = re.compile(r"^\s*(?P<address>[^\[\s]+)\[\d+\]\((?P<fields>[^)]*)\)\s*$")


class WordNotAllowed(ConfigurationError):
    """The member answered, but ``word`` is not in its ``4lw.commands.whitelist``."""

    def __init__(self, member: str, word: str, answer: str) -> None:
        super().__init__(
            f"{member} refused {word!r}: add it to 4lw.commands.whitelist in zoo.cfg "
            f"(server said: {answer.strip()})"
        )
        self.member = member
        self.word = word
        self.answer = answer


class MemberSilent(ConnectionFailedError):
    """The member gave no answer; ``reason`` says why in a few words (for reports)."""

    def __init__(self, member: str, word: str, reason: str) -> None:
        super().__init__(f"ZooKeeper member {member} did not answer {word!r}: {reason}")
        self.member = member
        self.word = word
        self.reason = reason


def four_letter_word(
    address: tuple[str, int],
    word: str,
    *,
    timeout: float = 5.0,
    tls: ssl.SSLContext | None = None,
) -> str:
    """Send ``word`` to the member at ``(host, port)`` and return its whole answer as text
    (possibly empty: ``wchp`` with no watches). Everything, connecting included, ends
    within ``timeout`` seconds. With ``tls``, over TLS (a secureClientPort answers too).

    Raises:
        ConfigurationError: ``word`` is not four lowercase letters.
        WordNotAllowed: the member does not allow ``word``.
        MemberSilent: no answer (see its ``reason``); a paused member's kernel still
            accepts the connection, but nothing answers.
    """
    if not _WORD.fullmatch(word):
        raise ConfigurationError(f"four-letter word must be 4 lowercase letters, got {word!r}")
    member = format_member(*address)
    deadline = time.monotonic() + timeout
    sock = _connect(address, member, word, timeout)
    with contextlib.ExitStack() as stack:
        stack.enter_context(sock)
        chunks: list[bytes] = []
        try:
            if tls is not None:
                sock = stack.enter_context(tls.wrap_socket(sock, server_hostname=address[0]))
            sock.sendall(word.encode("ascii"))
            _read_until_closed(sock, deadline, chunks)
        except TimeoutError:
            raise MemberSilent(
                member,
                word,
                f"accepted the connection but did not answer within {timeout:g} s "
                "(paused, overloaded, or a TLS-only port)",
            ) from None
        except OSError as exc:
            if not chunks:  # a reset after an answer keeps the answer
                raise MemberSilent(member, word, exc.strerror or str(exc)) from exc
    text = b"".join(chunks).decode("utf-8", errors="replace")
    if _NOT_WHITELISTED in text:
        raise WordNotAllowed(member, word, text)
    return text


def _connect(address: tuple[str, int], member: str, word: str, timeout: float) -> socket.socket:
    try:
        return socket.create_connection(address, timeout=timeout)
    except TimeoutError:
        raise MemberSilent(member, word, f"no connection within {timeout:g} s") from None
    except ConnectionRefusedError:
        raise MemberSilent(member, word, "connection refused") from None
    except OSError as exc:
        raise MemberSilent(member, word, exc.strerror or str(exc)) from exc


def _read_until_closed(sock: socket.socket, deadline: float, chunks: list[bytes]) -> None:
    """Read into ``chunks`` until the member closes the connection (its end of an answer);
    TimeoutError at the deadline."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        data = sock.recv(65536)
        if not data:
            return
        chunks.append(data)


def server_mode(text: str) -> str | None:
    """The ``Mode:`` of a ``srvr`` answer (or ``zk_server_state`` of ``mntr``): "leader",
    "follower", "standalone"...; None when the answer has neither."""
    for line in text.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
        key, sep, value = line.partition("\t")
        if sep and key.strip() == "zk_server_state":
            return value.strip()
    return None


@dataclass(frozen=True)
class ClientConnection:
    """One client connection a member lists in its ``cons`` answer.

    ``host``: the client's address as the member sees it (an IP address, no port);
    ``client``: ``host:port`` (``[v6]:port``); ``session_id``: the session on it, None
    while it has none (a connection that only sent a four-letter word, as ours does).
    """

    host: str
    client: str
    session_id: int | None


def parse_cons(text: str) -> list[ClientConnection]:
    """The connections of a ``cons`` answer (lines that are not one are skipped: blank
    lines, a member's "not currently serving" sentence)."""
    found = []
    for line in text.splitlines():
        match = _CONS_LINE.match(line)
        if match is None:
            continue
        address = match["address"].rpartition("/")[2]  # drop Java's "hostname/" part
        host, colon, port = address.rpartition(":")
        if not colon or not port.isdigit():
            continue
        host = host.strip("[]")
        fields = dict(
            field.partition("=")[::2] for field in match["fields"].split(",") if "=" in field
        )
        found.append(
            ClientConnection(host, format_member(host, int(port)), _session_id(fields.get("sid")))
        )
    return found


def _session_id(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


def connections(
    address: tuple[str, int], *, timeout: float = 5.0, tls: ssl.SSLContext | None = None
) -> list[ClientConnection]:
    """The client connections of the member at ``address``, from its ``cons`` answer (within
    ``timeout``; the errors of :func:`four_letter_word`). A member without quorum serves no
    client, so it lists none."""
    return parse_cons(four_letter_word(address, "cons", timeout=timeout, tls=tls))
