"""The four-letter-word client against scripted servers on loopback: every way a member
answers or does not, each a typed error, each within the deadline."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from zkelect import ConfigurationError, ConnectionFailedError
from zkelect._zookeeper.words import (
    NOT_SERVING,
    MemberSilent,
    WordNotAllowed,
    four_letter_word,
)

NOT_WHITELISTED = "conf is not executed because it is not in the whitelist.\n"

Serve = Callable[[Callable[[socket.socket, bytes], None]], tuple[str, int]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start a one-connection server whose ``reply(conn, word)`` plays the member."""
    listeners: list[socket.socket] = []
    threads: list[threading.Thread] = []
    words: list[bytes] = []

    def start(reply: Callable[[socket.socket, bytes], None]) -> tuple[str, int]:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(5.0)
        listeners.append(listener)

        def run() -> None:
            conn, _ = listener.accept()
            with conn:
                word = conn.recv(4)
                words.append(word)
                reply(conn, word)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        host, port = listener.getsockname()[:2]
        return str(host), int(port)

    yield start
    for thread in threads:
        thread.join(5.0)
    for listener in listeners:
        listener.close()


def test_the_whole_answer_comes_back(serve: Serve) -> None:
    def reply(conn: socket.socket, word: bytes) -> None:
        assert word == b"srvr"
        conn.sendall(b"Zookeeper version: 3.8\n")
        conn.sendall(b"Mode: follower\n")

    address = serve(reply)
    assert four_letter_word(address, "srvr") == "Zookeeper version: 3.8\nMode: follower\n"


def test_an_empty_answer_is_not_an_error(serve: Serve) -> None:
    assert four_letter_word(serve(lambda conn, word: None), "wchp") == ""


def test_not_serving_is_an_answer(serve: Serve) -> None:
    address = serve(lambda conn, word: conn.sendall(NOT_SERVING.encode() + b"\n"))
    assert NOT_SERVING in four_letter_word(address, "mntr")


def test_a_word_not_whitelisted_is_a_configuration_error(serve: Serve) -> None:
    address = serve(lambda conn, word: conn.sendall(NOT_WHITELISTED.encode()))
    with pytest.raises(WordNotAllowed, match=r"4lw\.commands\.whitelist") as caught:
        four_letter_word(address, "conf")
    assert isinstance(caught.value, ConfigurationError)
    assert caught.value.word == "conf" and caught.value.answer == NOT_WHITELISTED
    assert caught.value.member == f"127.0.0.1:{address[1]}"


def test_a_refused_connection_is_a_silent_member() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    with pytest.raises(MemberSilent, match="did not answer 'ruok'") as caught:
        four_letter_word(("127.0.0.1", port), "ruok", timeout=2.0)
    assert isinstance(caught.value, ConnectionFailedError)
    assert caught.value.reason == "connection refused"


def test_a_member_that_accepts_but_never_answers_times_out() -> None:
    # A listener nobody accepts on: the kernel completes the handshake, as for a paused
    # ZooKeeper, and nothing is ever read or written.
    with socket.create_server(("127.0.0.1", 0), backlog=1) as listener:
        started = time.monotonic()
        with pytest.raises(MemberSilent) as caught:
            four_letter_word(listener.getsockname()[:2], "ruok", timeout=0.3)
        elapsed = time.monotonic() - started
    assert "did not answer within 0.3 s" in caught.value.reason
    assert elapsed < 2.0


def test_a_slow_trickle_is_cut_at_the_deadline(serve: Serve) -> None:
    stop = threading.Event()

    def trickle(conn: socket.socket, word: bytes) -> None:
        while not stop.wait(0.05):  # a byte at a time, never closing: one deadline for all
            try:
                conn.sendall(b".")
            except OSError:
                return

    address = serve(trickle)
    started = time.monotonic()
    try:
        with pytest.raises(MemberSilent, match=r"within 0\.3 s"):
            four_letter_word(address, "mntr", timeout=0.3)
    finally:
        stop.set()
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("word", ["MNTR", "stat; rm", "mnt", "mntrx", ""])
def test_a_malformed_word_is_refused_before_connecting(word: str) -> None:
    with pytest.raises(ConfigurationError, match="4 lowercase letters"):
        four_letter_word(("127.0.0.1", 1), word)


def test_ipv6_members_are_named_in_brackets() -> None:
    with pytest.raises(MemberSilent, match=r"member \[::1\]:1 did not answer") as caught:
        four_letter_word(("::1", 1), "ruok", timeout=1.0)
    assert caught.value.member == "[::1]:1"
