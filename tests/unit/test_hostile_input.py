"""Hostile input to every public entry point: a typed error with a clear message, or a value that
round-trips; never another exception. Table-driven cases (input -> error type -> message
fragment) and hypothesis fuzzing. No servers: every case fails before a connection is made
(tests/integration/test_bad_input.py proves "before anything is sent" against real servers).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kazoo.client import KazooClient
from kazoo.hosts import collect_hosts
from prometheus_client import CollectorRegistry

from zkelect import (
    ConfigurationError,
    Election,
    ElectionConfig,
    FencingGuard,
    FencingToken,
    InvalidTokenError,
    SQLiteFencedStore,
    ZkElectError,
)
from zkelect.config import (
    MAX_SECONDS,
    split_connect_string,
    validate_candidate_id,
    validate_connect_string,
    validate_path,
)
from zkelect.ops.cli.ensemble import default_dir
from zkelect.ops.cli.main import main
from zkelect.ops.exporter import ElectionExporter
from zkelect.ops.exporter import run as run_exporter
from zkelect.ops.http import StatusServer
from zkelect.testing.ensemble import LocalEnsemble

UNREACHABLE = "127.0.0.1:9"  # never contacted
TOKEN = (
    "zk1:4294967300:abc:bm9kZS1h:/e/x"  # str(FencingToken(0x100000004, "/e/x", "node-a", 0xABC))
)


@pytest.fixture(scope="module")
def client() -> KazooClient:
    return KazooClient(UNREACHABLE)  # never started


# -- the Python API: input -> error type -> fragment -------------------------------------------

API_CASES: list[tuple[str, Callable[[KazooClient, Path], Any], type[ZkElectError], str]] = [
    (
        "session_timeout inf",
        lambda c, p: ElectionConfig(session_timeout=math.inf),
        ConfigurationError,
        "at most 86400",
    ),
    (
        "connect_timeout huge",
        lambda c, p: ElectionConfig(connect_timeout=1e300),
        ConfigurationError,
        "connect_timeout",
    ),
    (
        "heartbeat inf",
        lambda c, p: ElectionConfig(heartbeat_interval=math.inf),
        ConfigurationError,
        "heartbeat_interval",
    ),
    (
        "retry_max_delay inf",
        lambda c, p: ElectionConfig(retry_max_delay=math.inf),
        ConfigurationError,
        "retry_max_delay",
    ),
    (
        "metrics not a recorder",
        lambda c, p: Election(c, "/e/x", metrics="nope"),
        ConfigurationError,
        "MetricsRecorder",
    ),
    ("clock not callable", lambda c, p: Election(c, "/e/x", clock=5), ConfigurationError, "clock"),
    (
        "id with bidi override",
        lambda c, p: Election(c, "/e/x", candidate_id="a\u202eb"),
        ConfigurationError,
        "control characters",
    ),
    (
        "id with line separator",
        lambda c, p: Election(c, "/e/x", candidate_id="a\u2028b"),
        ConfigurationError,
        "control characters",
    ),
    (
        "id bytes",
        lambda c, p: Election(c, "/e/x", candidate_id=b"a"),
        ConfigurationError,
        "must be a str",
    ),
    ("path bytes", lambda c, p: Election(c, b"/e/x"), ConfigurationError, "must be a str"),
    ("hosts IPv6 unclosed", lambda c, p: Election("[::1", "/e/x"), ConfigurationError, "IPv6"),
    (
        "wait nan",
        lambda c, p: Election(c, "/e/x").wait_for_leadership(math.nan),
        ConfigurationError,
        "timeout",
    ),
    (
        "wait str",
        lambda c, p: Election(c, "/e/x").wait_for_leadership("1"),
        ConfigurationError,
        "timeout",
    ),
    ("resign negative", lambda c, p: Election(c, "/e/x").resign(-1), ConfigurationError, "timeout"),
    ("stop inf", lambda c, p: Election(c, "/e/x").stop(math.inf), ConfigurationError, "timeout"),
    (
        "leadership inf",
        lambda c, p: Election(c, "/e/x").leadership(math.inf).__enter__(),
        ConfigurationError,
        "timeout",
    ),
    (
        "token int",
        lambda c, p: FencingToken.parse(5),
        InvalidTokenError,
        "not a zkelect fencing token",
    ),
    (
        "token unicode digits",
        lambda c, p: FencingToken.parse("zk1:\u0661:abc:bm9kZS1h:/e/x"),
        InvalidTokenError,
        "malformed",
    ),
    (
        "token underscores",
        lambda c, p: FencingToken.parse("zk1:4_294_967_300:abc:bm9kZS1h:/e/x"),
        InvalidTokenError,
        "malformed",
    ),
    (
        "token leading zero",
        lambda c, p: FencingToken.parse("zk1:04294967300:abc:bm9kZS1h:/e/x"),
        InvalidTokenError,
        "malformed",
    ),
    (
        "token session 0x",
        lambda c, p: FencingToken.parse("zk1:4294967300:0xabc:bm9kZS1h:/e/x"),
        InvalidTokenError,
        "malformed",
    ),
    (
        "token epoch over 2**63",
        lambda c, p: FencingToken.parse(f"zk1:{2**63}:abc:bm9kZS1h:/e/x"),
        InvalidTokenError,
        "epoch",
    ),
    (
        "token base64 padding",
        lambda c, p: FencingToken.parse("zk1:4294967300:abc:bm9kZS1h==:/e/x"),
        InvalidTokenError,
        "malformed",
    ),
    (
        "token base64 stray bits",
        lambda c, p: FencingToken.parse("zk1:4294967300:abc:bm9kZR:/e/x"),
        InvalidTokenError,
        "not canonical",
    ),
    (
        "token bad path",
        lambda c, p: FencingToken.parse("zk1:4294967300:abc:bm9kZS1h:/e//x"),
        InvalidTokenError,
        "path",
    ),
    (
        "token huge quoted short",
        lambda c, p: FencingToken.parse("zk1:" + "9" * 100_000),
        InvalidTokenError,
        "…",
    ),
    (
        "token built bad epoch",
        lambda c, p: FencingToken(0, "/e/x", "a", 1),
        InvalidTokenError,
        "epoch",
    ),
    (
        "token built bool",
        lambda c, p: FencingToken(True, "/e/x", "a", 1),
        InvalidTokenError,
        "epoch",
    ),
    (
        "token built surrogate id",
        lambda c, p: FencingToken(1, "/e/x", "\udcff", 1),
        InvalidTokenError,
        "UTF-8",
    ),
    (
        "guard header int",
        lambda c, p: FencingGuard().check("r", 5),
        InvalidTokenError,
        "must be text",
    ),
    (
        "guard header blank",
        lambda c, p: FencingGuard().check("r", "  "),
        InvalidTokenError,
        "not a zkelect",
    ),
    (
        "guard resource None",
        lambda c, p: FencingGuard().check(None, TOKEN),
        ConfigurationError,
        "resource",
    ),
    ("guard store junk", lambda c, p: FencingGuard("db"), ConfigurationError, "FencedStore"),
    ("sqlite path int", lambda c, p: SQLiteFencedStore(5), ConfigurationError, "file name"),
    (
        "sqlite missing dir",
        lambda c, p: SQLiteFencedStore(p / "no" / "x.db"),
        ConfigurationError,
        "cannot open",
    ),
    (
        "sqlite busy nan",
        lambda c, p: SQLiteFencedStore(p / "x.db", busy_timeout=math.nan),
        ConfigurationError,
        "busy_timeout",
    ),
    (
        "sqlite busy str",
        lambda c, p: SQLiteFencedStore(p / "x.db", busy_timeout="1"),
        ConfigurationError,
        "busy_timeout",
    ),
    (
        "sqlite action",
        lambda c, p: SQLiteFencedStore(p / "x.db").write("r", FencingToken.parse(TOKEN), "x"),
        ConfigurationError,
        "action",
    ),
    (
        "sqlite highest None",
        lambda c, p: SQLiteFencedStore(p / "x.db").highest_epoch(None),
        ConfigurationError,
        "resource",
    ),
    (
        "status server elections int",
        lambda c, p: StatusServer(elections=5),
        ConfigurationError,
        "list of Elections",
    ),
    (
        "status server not elections",
        lambda c, p: StatusServer(elections=["e"]),
        ConfigurationError,
        "Election",
    ),
    (
        "status server add junk",
        lambda c, p: StatusServer().add("e"),
        ConfigurationError,
        "Election",
    ),
    ("exporter paths None", lambda c, p: ElectionExporter(c, None), ConfigurationError, "paths"),
    (
        "exporter refresh inf",
        lambda c, p: ElectionExporter(c, ["/e"], refresh_interval=math.inf),
        ConfigurationError,
        "refresh_interval",
    ),
    (
        "exporter timeout huge",
        lambda c, p: ElectionExporter(c, ["/e"], request_timeout=1e300),
        ConfigurationError,
        "request_timeout",
    ),
    (
        "exporter clock",
        lambda c, p: ElectionExporter(c, ["/e"], clock=5),
        ConfigurationError,
        "clock",
    ),
    (
        "ensemble start_timeout inf",
        lambda c, p: LocalEnsemble(1, start_timeout=math.inf),
        ConfigurationError,
        "start_timeout",
    ),
    (
        "ensemble base_dir int",
        lambda c, p: LocalEnsemble(1, base_dir=5),
        ConfigurationError,
        "base_dir",
    ),
    (
        "ensemble extra list",
        lambda c, p: LocalEnsemble(1, extra_config=["a=b"]),
        ConfigurationError,
        "mapping",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [pytest.param(call, error, fragment, id=name) for name, call, error, fragment in API_CASES],
)
def test_api_rejects_bad_input_with_a_typed_error(
    client: KazooClient,
    tmp_path: Path,
    call: Callable[[KazooClient, Path], Any],
    error: type[ZkElectError],
    fragment: str,
) -> None:
    with pytest.raises(error) as caught:
        call(client, tmp_path)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)  # one line, whatever the input held


def test_a_token_keeps_a_negative_session_id() -> None:
    """ZooKeeper session ids start with the server id: negative from server id 128 on."""
    token = FencingToken(5, "/e/x", "a", -(2**62))
    assert FencingToken.parse(str(token)) == token


# -- connect strings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hosts", "fragment"),
    [
        ("::1", "brackets"),
        ("::1:2181", "brackets"),
        ("[::1", "IPv6"),
        ("[::1]x", "IPv6"),
        ("[zz]:2181", "bad IPv6 address"),
        ("[]:2181", "bad IPv6 address"),
        ("h:\u0661\u0662", "bad port"),
        ("h:+1", "bad port"),
        ("h:", "empty port"),
        ("u@h:2181", "bad host"),
        ("h?x:2181", "bad host"),
        ("h#x:2181", "bad host"),
        ("h\u00a0:2181", "bad host"),
        ("h\u00e9:2181", "bad host"),
        ("h:2181/a//b", "chroot"),
        ("h:2181/zookeeper", "reserved"),
    ],
)
def test_bad_connect_strings(hosts: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        validate_connect_string(hosts)


@pytest.mark.parametrize(
    "hosts", ["[::1]:2181", "[::1]", "a.b-c_d:1,[fe80::1]:65535/x", "h:2181/", "10.0.0.1"]
)
def test_good_connect_strings_parse_like_kazoo(hosts: str) -> None:
    assert validate_connect_string(hosts) == hosts
    assert split_connect_string(hosts) == collect_hosts(hosts)


# -- fuzzing: accepted and round-trips, or a ConfigurationError; nothing else ----------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_host_alphabet = st.sampled_from([*list("ab1.-_:[]/,@?# é١"), "::", "]:", "\x00"])


@FUZZ
@given(st.text(max_size=80))
def test_fuzz_candidate_ids(candidate_id: str) -> None:
    try:
        data = validate_candidate_id(candidate_id)
    except ConfigurationError:
        return
    assert data.decode("utf-8") == candidate_id
    assert candidate_id.strip()
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in candidate_id)


@FUZZ
@given(st.lists(st.sampled_from([*"/ab.\u00e9\x00\ud800\ufff0", "..", "/zookeeper"])).map("".join))
def test_fuzz_paths(path: str) -> None:
    try:
        checked = validate_path(path)
    except ConfigurationError:
        return
    assert checked == path and path.startswith("/") and "//" not in path
    assert all(part not in ("", ".", "..") for part in path[1:].split("/"))


@FUZZ
@given(st.lists(_host_alphabet, max_size=16).map("".join))
def test_fuzz_connect_strings(hosts: str) -> None:
    try:
        validate_connect_string(hosts)
    except ConfigurationError:
        return
    # Accepted: kazoo parses it the same way (no ValueError from its URL-based parser later).
    assert split_connect_string(hosts) == collect_hosts(hosts)


@FUZZ
@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda e, s, i, p: f"zk1:{e}:{s}:{i}:{p}",
            st.text(alphabet="0123456789_+- \u0661", max_size=22),
            st.text(alphabet="0123456789abcdefABX-", max_size=18),
            st.text(alphabet="abcAB09-_+/=", max_size=12),
            st.text(alphabet="/ab:", max_size=8),
        ),
    )
)
def test_fuzz_token_text(text: str) -> None:
    try:
        token = FencingToken.parse(text)
    except InvalidTokenError:
        return
    assert str(token) == text and FencingToken.parse(str(token)) == token


@FUZZ
@given(
    st.integers(min_value=-5, max_value=2**64),
    st.text(max_size=12),
    st.text(max_size=12),
    st.integers(min_value=-(2**64), max_value=2**64),
)
def test_fuzz_tokens_built_from_fields(epoch: int, path: str, who: str, session: int) -> None:
    try:
        token = FencingToken(epoch, path, who, session)
    except InvalidTokenError:
        return
    assert FencingToken.parse(str(token)) == token


@FUZZ
@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=5),
    )
)
def test_fuzz_durations(value: Any) -> None:
    try:
        config = ElectionConfig(session_timeout=value)
    except ConfigurationError:
        return
    assert 0 < config.session_timeout <= MAX_SECONDS


# -- the CLI: argv -> exit 2 and one line, before any connection --------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("ZKELECT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ZKELECT_HOSTS", UNREACHABLE)
    monkeypatch.setenv("ZKELECT_ENSEMBLE_DIR", str(tmp_path / "ensemble"))


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["status", "/x", "--timeout", "inf"], "--timeout"),
        (["status", "/x", "--timeout", "1e300"], "--timeout"),
        (["status", "/x", "--hosts", "[::1"], "IPv6"),
        (["status", "/x", "--hosts", "::1"], "brackets"),
        (["status", "/x", "--hosts", "h:\u0661"], "bad port"),
        (["status", "/x\udcff"], "character ZooKeeper rejects"),
        (["status", "/" + "a" * 2000], "longer than 1024"),
        (["watch", "/x", "--timeout", "inf"], "--timeout"),
        (["resign", "/x", "--timeout", "inf"], "--timeout"),
        (["exporter", "--path", "/x", "--session-timeout", "inf"], "--session-timeout"),
        (["exporter", "--path", "/x", "--refresh-interval", "inf"], "--refresh-interval"),
        (["doctor", "--session-timeout", "inf"], "--session-timeout"),
        (["doctor", "--hosts", "[zz]:1"], "IPv6"),
        (["run", "/x", "--session-timeout", "inf", "--", "true"], "--session-timeout"),
        (["run", "/x", "--timeout", "inf", "--", "true"], "--timeout"),
        (["run", "/x", "--grace", "inf", "--", "true"], "--grace"),
        (["run", "/x", "--id", "a\u202eb", "--", "true"], "control characters"),
        (["run", "/x", "--hosts", "u@h:1", "--", "true"], "bad host"),
        (["ensemble", "up", "--timeout", "inf"], "--timeout"),
    ],
)
def test_cli_rejects_bad_options_with_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2, err
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("zkelect: "), err
    assert fragment in err


@pytest.mark.parametrize(
    ("variable", "value", "argv", "fragment"),
    [
        ("ZKELECT_HOSTS", "[::1", ["status", "/x"], "IPv6"),
        ("ZKELECT_HOSTS", "h:99999", ["run", "/x", "--", "true"], "bad port"),
        ("ZKELECT_AUTH", "digest", ["status", "/x"], "--auth must be"),
        ("ZKELECT_AUTH", "nocolon", ["doctor"], "--auth must be"),
    ],
)
def test_cli_rejects_bad_environment_variables(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    argv: list[str],
    fragment: str,
) -> None:
    monkeypatch.setenv(variable, value)
    code, _out, err = run(capsys, *argv)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and fragment in err, err


def test_python_m_exporter_rejects_infinite_intervals(capsys: pytest.CaptureFixture[str]) -> None:
    registry = CollectorRegistry()
    code = run_exporter(UNREACHABLE, ["/x"], 0, refresh_interval=math.inf, registry=registry)
    assert code == 2
    assert "--refresh-interval" in capsys.readouterr().err


def test_a_relative_xdg_state_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")
    assert default_dir() == Path.home() / ".zkelect" / "ensemble"
    monkeypatch.setenv("XDG_STATE_HOME", "/var/state")
    assert default_dir() == Path("/var/state/zkelect/ensemble")


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("ZOOKEEPER_HOME", "/nonexistent/zk", "ZOOKEEPER_HOME=/nonexistent/zk holds no"),
    ],
)
def test_bad_install_variables_are_typed_errors(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    from zkelect.errors import ZooKeeperNotFoundError
    from zkelect.testing.ensemble import find_zookeeper

    monkeypatch.setenv(variable, value)
    with pytest.raises(ZooKeeperNotFoundError, match=fragment):
        find_zookeeper()
