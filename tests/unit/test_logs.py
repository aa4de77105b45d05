"""The log records' formats and the secret filter (zkelect/_logs.py, zkelect/ops/logs.py).

In-process and pure: records are built by hand, kazoo's request objects are its own (their
repr is what kazoo logs). ``zkelect run``'s real lines on a real ensemble are checked in
tests/integration/test_cli_logs.py.
"""

from __future__ import annotations

import ast
import io
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.protocol.serialization import Auth, Connect

import zkelect
from zkelect._logs import EVENTS, REDACTED, SecretFilter, emit, protect_kazoo_logs, redact
from zkelect.ops.cli import run as cli_run
from zkelect.ops.cli.main import main
from zkelect.ops.logs import (
    ContextFilter,
    DropEvents,
    JsonFormatter,
    TextFormatter,
    configure,
    iso_time,
    secrets_of,
)
from zkelect.security import ClientSecurity, DigestAuth

PACKAGE = Path(zkelect.__file__).parent
DOCS = PACKAGE.parent / "docs" / "logging.md"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")
SESSION_PASSWORD = b"\x8f'\"\\s3cr3t\x00\xffpass\x10\x11\x12\x13\x14"


def record(message: str, *args: object, name: str = "zkelect", **fields: Any) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.INFO, __file__, 1, message, args or None, None)
    for key, value in fields.items():
        setattr(made, key, value)
    return made


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    levels = {name: logging.getLogger(name).level for name in ("zkelect", "kazoo")}
    try:
        yield
    finally:
        root.handlers[:], root.level = saved
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


# -- redaction ---------------------------------------------------------------------------------


def test_the_session_password_in_kazoos_connect_request_is_redacted() -> None:
    line = f"Sending request(xid=None): {Connect(0, 7, 10000, 0x1234, SESSION_PASSWORD, None)}"
    clean = redact(line)
    assert f"passwd={REDACTED}" in clean and "s3cr3t" not in clean
    assert clean.endswith(", read_only=None)")  # what follows the password is kept
    assert "session_id=4660" in clean


def test_digest_credentials_sasl_passwords_and_hex_passwords_are_redacted() -> None:
    cases = {
        f"Sending: {Auth(0, 'digest', 'alice:pw1')}": "pw1",
        "sasl {'mechanism': 'DIGEST-MD5', 'username': 'u', 'password': 'pw2'}": "pw2",
        "Session created, session_id: 1 session_passwd: b'00ff12ab34'": "00ff12ab34",
        "--auth digest:alice:pw3 refused": "pw3",
        "SASL(challenge=b'\\x01pw4')": "pw4",
        "TlsOptions(key_password='pw5')": "pw5",
    }
    for line, secret in cases.items():
        clean = redact(line)
        assert secret not in clean and REDACTED in clean, (line, clean)
        assert redact(clean) == clean  # redacting twice changes nothing


def test_known_secrets_are_redacted_wherever_they_appear_and_plain_lines_are_kept() -> None:
    assert redact("user hunter2 logged", ["hunter2"]) == f"user {REDACTED} logged"
    plain = "connected to ZooKeeper member 127.0.0.1:2181 (session 0x10000, timeout 10s)"
    assert redact(plain, ["", "absent"]) == plain


def test_the_filter_rewrites_records_with_arguments_and_keeps_them_all() -> None:
    made = record("Sending request(xid=%s): %s", None, Connect(0, 0, 1, 2, SESSION_PASSWORD, None))
    assert SecretFilter().filter(made)
    assert f"passwd={REDACTED}" in made.getMessage() and made.args is None
    untouched = record("elected %s", "/e")
    assert SecretFilter().filter(untouched) and untouched.args == ("/e",)


def test_kazoos_own_logger_gets_the_filter(restore_logging: None) -> None:
    protect_kazoo_logs()
    protect_kazoo_logs()  # once per logger, however many sessions
    kazoo = logging.getLogger("kazoo.client")
    assert sum(isinstance(f, SecretFilter) for f in kazoo.filters) == 1
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    kazoo.addHandler(handler)
    level = kazoo.level
    kazoo.setLevel(logging.DEBUG)
    try:
        kazoo.debug("Sending request(xid=%s): %s", -4, Auth(0, "digest", "bob:pw6"))
    finally:
        kazoo.removeHandler(handler)
        kazoo.setLevel(level)
    assert "pw6" not in stream.getvalue() and f"auth={REDACTED}" in stream.getvalue()


def test_secrets_of_a_client_security_and_the_environment() -> None:
    security = ClientSecurity(auth=(DigestAuth("alice", "pw7"),))
    found = secrets_of(security, {"ZKELECT_SASL_PASSWORD": "pw8", "ZKELECT_ID": "not-secret"})
    assert set(found) == {"alice:pw7", "pw7", "pw8"}
    assert found[0] == "alice:pw7"  # longest first
    assert secrets_of(None, {}) == []


# -- formats -----------------------------------------------------------------------------------


def test_time_is_iso_8601_with_milliseconds_and_zone() -> None:
    assert ISO.match(iso_time(1_800_000_000.1234))
    assert iso_time(1_800_000_000.1234)[19:23] == ".123"


def test_text_lines_name_the_program_and_foreign_loggers() -> None:
    formatter = TextFormatter("zkelect run node-a", ["pw9"])
    own = formatter.format(record("elected: epoch=%d", 5))
    time, level, rest = own.split(" ", 2)
    assert ISO.match(time) and level == "INFO" and rest == "zkelect run node-a: elected: epoch=5"
    kazoo = formatter.format(record("Connecting with pw9", name="kazoo.client"))
    assert kazoo.endswith(f"zkelect run node-a: [kazoo.client] Connecting with {REDACTED}")


def test_text_exceptions_are_redacted_too() -> None:
    try:
        raise RuntimeError("digest:alice:pw10")
    except RuntimeError:
        made = logging.LogRecord(
            "zkelect", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    text = TextFormatter("zkelect run a").format(made)
    assert "Traceback" in text and "pw10" not in text


def test_json_lines_have_every_field_and_exact_ids() -> None:
    epoch, session = 2**60 + 7, 0x3000003CB2F0000
    made = record(
        "revoked (%s)",
        "lease_expired",
        event="revoked",
        election="/e",
        candidate="a",
        epoch=epoch,
        session=session,
        reason="lease_expired",
        pid=42,
    )
    entry = json.loads(JsonFormatter().format(made), parse_int=_small_int)
    assert ISO.match(entry.pop("time"))
    assert entry == {
        "level": "INFO",
        "logger": "zkelect",
        "election": "/e",
        "candidate": "a",
        "event": "revoked",
        "epoch": str(epoch),
        "epoch_hex": hex(epoch),
        "session": "0x3000003cb2f0000",
        "reason": "lease_expired",
        "message": "revoked (lease_expired)",
        "pid": 42,
    }


def test_json_lines_without_event_fields_have_them_null() -> None:
    entry = json.loads(JsonFormatter().format(record("hello", name="kazoo.client")))
    assert entry["event"] is None and entry["session"] is None and entry["epoch"] is None
    assert not {"member", "node", "pid", "code", "signal"} & set(entry)


def _small_int(text: str) -> int:
    value = int(text)
    assert abs(value) < 2**53, text
    return value


def test_context_fills_only_what_a_record_lacks() -> None:
    context = ContextFilter({"election": "/e", "candidate": "a"})
    bare, named = record("x"), record("y", candidate="b")
    assert context.filter(bare) and context.filter(named)
    assert (bare.election, bare.candidate) == ("/e", "a")  # type: ignore[attr-defined]
    assert named.candidate == "b"  # type: ignore[attr-defined]


def test_drop_events_drops_only_the_librarys_records_of_them() -> None:
    drop = DropEvents(["elected"])
    assert not drop.filter(record("x", event="elected"))
    assert drop.filter(record("x", name="zkelect.run", event="elected"))
    assert drop.filter(record("x", event="connected"))


def test_configure_sets_the_levels_for_each_verbosity(restore_logging: None) -> None:
    stream = io.StringIO()
    expected = {
        0: (logging.INFO, logging.CRITICAL),
        1: (logging.DEBUG, logging.INFO),
        2: (logging.DEBUG, logging.DEBUG),
    }
    for verbosity, (ours, kazoo) in expected.items():
        configure(log_format="json", verbosity=verbosity, prefix="p", stream=stream)
        assert logging.getLogger("zkelect").level == ours
        assert logging.getLogger("kazoo").level == kazoo
    logging.getLogger("kazoo.client").debug("Connect(passwd=b'pw11')")
    assert "pw11" not in stream.getvalue() and "passwd=<redacted>" in stream.getvalue()
    with pytest.raises(ValueError, match="log format"):
        configure(log_format="xml", verbosity=0, prefix="p")


# -- events ------------------------------------------------------------------------------------


class _Unprintable:
    def __str__(self) -> str:
        raise AssertionError("formatted although nothing would print it")


def test_an_event_is_not_formatted_when_no_handler_takes_it() -> None:
    logger = logging.getLogger("zkelect.test-quiet")
    logger.setLevel(logging.WARNING)
    emit("elected", "elected %s", _Unprintable(), logger=logger)  # no error: never formatted


def test_an_event_carries_its_name_and_fields() -> None:
    logger = logging.getLogger("zkelect.test-events")
    logger.setLevel(logging.INFO)
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign,assignment]
    logger.addHandler(handler)
    try:
        emit("rejoined", "rejoined %s", "/e", logger=logger, node="/e/n", session=3)
    finally:
        logger.removeHandler(handler)
    assert [(r.event, r.node, r.session, r.getMessage()) for r in seen] == [  # type: ignore[attr-defined]
        ("rejoined", "/e/n", 3, "rejoined /e")
    ]


def _event_names_in_code() -> set[str]:
    """Every event name the package passes to ``emit`` or ``say`` as a literal."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            index = {"emit": 0, "say": 1}.get(called)
            if index is None or len(node.args) <= index:
                continue
            arg = node.args[index]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
    return names


def test_every_event_logged_is_listed_and_documented() -> None:
    used = _event_names_in_code()
    assert used <= set(EVENTS), used - set(EVENTS)
    assert set(EVENTS) - used <= {"connected", "reconnected"}  # logged under a computed name
    documented = set(re.findall(r"^\| `(\w+)` \|", DOCS.read_text(), re.MULTILINE))
    assert set(EVENTS) <= documented, set(EVENTS) - documented


# -- the options -------------------------------------------------------------------------------


def test_run_takes_its_log_options_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ZKELECT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ZKELECT_LOG_FORMAT", "json")
    monkeypatch.setenv("ZKELECT_VERBOSE", "2")
    seen: dict[str, Any] = {}

    def configure_logging(verbose: int, log_format: Any, path: str, candidate: str, _: Any) -> None:
        seen.update(verbose=verbose, log_format=log_format.value, path=path, candidate=candidate)

    class Supervisor:
        def __init__(self, options: Any) -> None:
            pass

        def run(self) -> int:
            return 0

    monkeypatch.setattr(cli_run, "_configure_logging", configure_logging)
    monkeypatch.setattr(cli_run, "Supervisor", Supervisor)
    assert main(["run", "/e", "--id", "a", "--hosts", "127.0.0.1:9", "--", "true"]) == 0
    assert seen == {"verbose": 2, "log_format": "json", "path": "/e", "candidate": "a"}
