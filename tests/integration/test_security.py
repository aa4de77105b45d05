"""Keeping strangers out, against real servers: digest ACLs, SASL DIGEST-MD5 and TLS.

One 3-member ensemble serves a plaintext and a TLS client port (certificates made here with
``cryptography``: the servers' names only ``localhost``, so 127.0.0.1 is a hostname
mismatch) and offers SASL (users alice and bob). A second, 1-member ensemble *requires* SASL.
Every candidate is stopped at teardown; every subprocess is killed by its PID.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from election_support import candidate_children
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError

from zkelect import (
    ConnectionFailedError,
    DigestAuth,
    Election,
    ElectionAcl,
    ElectionConfig,
    ElectionStoppedError,
    Lifecycle,
    PermissionDeniedError,
    SaslOptions,
    TLSError,
    TlsOptions,
    kazoo_options,
)
from zkelect._lifeline import popen_tied
from zkelect.ops.doctor import Status, diagnose
from zkelect.testing import wait_for
from zkelect.testing.certs import TestPki, make_test_pki
from zkelect.testing.ensemble import LocalEnsemble, ServerSasl, ServerTls

REPO = Path(__file__).resolve().parents[2]
WAIT = 30.0
CONFIG = ElectionConfig(session_timeout=4.0, connect_timeout=20.0, request_timeout=10.0)
ALICE = DigestAuth("alice", "alice-pw")
USERS = {"alice": "alice-sasl-pw", "bob": "bob-sasl-pw"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"), server_names=("localhost",))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("other-pki"), ca_name="some other CA")


@pytest.fixture(scope="module")
def secure(pki: TestPki) -> Iterator[LocalEnsemble]:
    ens = LocalEnsemble(
        3,
        tick_time_ms=200,
        min_session_timeout_ms=400,
        max_session_timeout_ms=20_000,
        tls=ServerTls(pki.server_cert, pki.server_key, pki.ca_file),
        sasl=ServerSasl(USERS),
    )
    with ens:
        # zk_path lives under /t; create it open here, or the first locked election would
        # create it with its ACL (parents get the ACL too) and lock the other tests out.
        client = KazooClient(hosts=ens.hosts)
        client.start(timeout=WAIT)
        client.ensure_path("/t")
        client.stop()
        client.close()
        yield ens


def tls_hosts(ens: LocalEnsemble, host: str = "localhost") -> str:
    return ens.secure_hosts.replace("127.0.0.1", host)


@pytest.fixture
def elections() -> Iterator[Callable[..., Election]]:
    made: list[Election] = []

    def make(hosts: Any, path: str, candidate_id: str, **kw: Any) -> Election:
        election = Election(hosts, path, candidate_id=candidate_id, config=CONFIG, **kw)
        made.append(election)
        return election

    yield make
    for election in made:
        election.stop()


def _refused(election: Election) -> PermissionDeniedError:
    """start() raises a terminal PermissionDeniedError and the election is closed."""
    with pytest.raises(PermissionDeniedError) as caught:
        election.start()
    assert election.lifecycle is Lifecycle.CLOSED
    with pytest.raises((PermissionDeniedError, ElectionStoppedError)):  # closed: no hang
        election.wait_for_leadership(1.0)
    return caught.value


# -- digest ACLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("others_may_read", [True, False])
def test_only_authorised_candidates_join_a_digest_acl_path(
    secure: LocalEnsemble,
    zk_path: str,
    elections: Callable[..., Election],
    kazoo_clients: Callable[..., KazooClient],
    others_may_read: bool,
) -> None:
    acl = ElectionAcl([ALICE], others_may_read=others_may_read)
    path = f"{zk_path}/locked/election"
    leader = elections(secure.hosts, path, "authorised", auth=ALICE, acl=acl)
    leader.start()
    assert leader.wait_for_leadership(WAIT) is not None

    # The path, its parents zkelect created, and the candidate node carry the ACL.
    admin = kazoo_clients(secure.hosts, auth_data=[ALICE.auth_data()])
    for node in (zk_path, f"{zk_path}/locked", path, leader.node):
        entries = {(a.id.scheme, a.id.id, a.perms) for a in admin.get_acls(node)[0]}
        assert entries == set(acl.entries()), node

    # Without credentials, or with the wrong password: a typed, terminal error, no node.
    message = str(_refused(elections(secure.hosts, path, "anonymous")))
    assert "NoAuth" in message and "not retried" in message
    _refused(elections(secure.hosts, path, "wrong-pw", auth=DigestAuth("alice", "guess")))
    assert len(candidate_children(admin, path)) == 1

    # Plain kazoo with the wrong password cannot delete the leader's node.
    intruder = kazoo_clients(secure.hosts, auth_data=[("digest", "alice:guess")])
    assert leader.node is not None
    with pytest.raises(NoAuthError):
        intruder.delete(leader.node)
    admin.sync(path)
    assert admin.exists(leader.node) is not None
    assert leader.is_leader

    # Others may read, or nothing, as asked.
    anonymous = kazoo_clients(secure.hosts)
    if others_may_read:
        assert candidate_children(anonymous, path) == candidate_children(admin, path)
    else:
        with pytest.raises(NoAuthError):
            candidate_children(anonymous, path)


def test_an_existing_path_with_another_acl_is_left_alone_and_reported(
    secure: LocalEnsemble,
    zk_path: str,
    elections: Callable[..., Election],
    kazoo_clients: Callable[..., KazooClient],
) -> None:
    admin = kazoo_clients(secure.hosts)
    admin.ensure_path(zk_path)  # world:anyone:cdrwa
    election = elections(secure.hosts, zk_path, "a", auth=ALICE, acl=ElectionAcl([ALICE]))
    election.start()
    assert election.wait_for_leadership(WAIT) is not None
    assert election.acl_mismatch is not None and "world:anyone:rwcda" in election.acl_mismatch
    entries = {(a.id.scheme, a.id.id, a.perms) for a in admin.get_acls(zk_path)[0]}
    assert entries == {("world", "anyone", 31)}


def test_doctor_passes_a_path_zkelect_locked_and_flags_an_open_one(
    secure: LocalEnsemble, zk_path: str, elections: Callable[..., Election]
) -> None:
    locked = f"{zk_path}-locked"
    election = elections(secure.hosts, locked, "a", auth=ALICE, acl=ElectionAcl([ALICE]))
    election.start()
    assert election.wait_for_leadership(WAIT) is not None
    verdict = {r.check: r for r in diagnose(secure.hosts, locked, timeout=10)}["election-path"]
    assert verdict.status is Status.OK, verdict
    assert "digest:alice:" in verdict.reason  # the servers mask the hash

    open_path = f"{zk_path}-open"
    elections(secure.hosts, open_path, "b").start()
    verdict = {r.check: r for r in diagnose(secure.hosts, open_path, timeout=10)}["election-path"]
    assert verdict.status is Status.FAIL and "writable by anyone" in verdict.reason


# -- SASL ------------------------------------------------------------------------------------


def test_a_sasl_authenticated_candidate_leads_and_a_sasl_acl_blocks_others(
    secure: LocalEnsemble,
    zk_path: str,
    elections: Callable[..., Election],
    kazoo_clients: Callable[..., KazooClient],
) -> None:
    alice = SaslOptions("alice", USERS["alice"])
    leader = elections(secure.hosts, zk_path, "alice", sasl=alice, acl=ElectionAcl(["sasl:alice"]))
    leader.start()
    assert leader.wait_for_leadership(WAIT) is not None

    bob = SaslOptions("bob", USERS["bob"])
    _refused(elections(secure.hosts, zk_path, "bob", sasl=bob))
    _refused(elections(secure.hosts, zk_path, "anonymous"))
    other = kazoo_clients(secure.hosts, **kazoo_options(sasl=bob))
    assert leader.node is not None
    with pytest.raises(NoAuthError):
        other.delete(leader.node)
    assert leader.is_leader


def test_a_wrong_sasl_password_is_a_clear_terminal_error(
    secure: LocalEnsemble, zk_path: str, elections: Callable[..., Election]
) -> None:
    election = elections(secure.hosts, zk_path, "x", sasl=SaslOptions("alice", "wrong"))
    message = str(_refused(election))
    assert "refused SASL DIGEST-MD5 authentication of user 'alice'" in message


def test_servers_that_require_sasl_refuse_anonymous_candidates(
    zk_path: str, elections: Callable[..., Election]
) -> None:
    with LocalEnsemble(
        1, tick_time_ms=200, min_session_timeout_ms=400, sasl=ServerSasl(USERS, required=True)
    ) as ens:
        anonymous = elections(ens.hosts, zk_path, "anonymous")
        assert "requires SASL" in str(_refused(anonymous))
        alice = elections(ens.hosts, zk_path, "alice", sasl=SaslOptions("alice", USERS["alice"]))
        alice.start()
        assert alice.wait_for_leadership(WAIT) is not None
        alice.stop()


# -- TLS -------------------------------------------------------------------------------------


def test_election_over_tls_with_verification(
    secure: LocalEnsemble, pki: TestPki, zk_path: str, elections: Callable[..., Election]
) -> None:
    tls = TlsOptions(ca_file=pki.ca_file)
    first = elections(tls_hosts(secure), zk_path, "first", tls=tls)
    second = elections(tls_hosts(secure), zk_path, "second", tls=tls)
    first.start()
    assert first.wait_for_leadership(WAIT) is not None
    second.start()
    assert first.resign()
    assert second.wait_for_leadership(WAIT) is not None


def test_tls_with_a_client_certificate(
    secure: LocalEnsemble, pki: TestPki, zk_path: str, elections: Callable[..., Election]
) -> None:
    tls = TlsOptions(ca_file=pki.ca_file, cert_file=pki.client_cert, key_file=pki.client_key)
    election = elections(tls_hosts(secure), zk_path, "with-cert", tls=tls)
    election.start()
    assert election.wait_for_leadership(WAIT) is not None


def test_a_server_certificate_from_another_ca_is_a_tls_error(
    secure: LocalEnsemble, other_pki: TestPki, zk_path: str, elections: Callable[..., Election]
) -> None:
    election = elections(tls_hosts(secure), zk_path, "x", tls=TlsOptions(ca_file=other_pki.ca_file))
    with pytest.raises(TLSError, match="is not trusted"):
        election.start()


def test_a_hostname_mismatch_fails_unless_switched_off_by_name(
    secure: LocalEnsemble, pki: TestPki, zk_path: str, elections: Callable[..., Election]
) -> None:
    mismatch = tls_hosts(secure, "127.0.0.1")  # the certificate names only localhost
    checked = elections(mismatch, zk_path, "checked", tls=TlsOptions(ca_file=pki.ca_file))
    with pytest.raises(TLSError, match="does not name that host"):
        checked.start()
    unchecked = elections(
        mismatch, zk_path, "unchecked", tls=TlsOptions(ca_file=pki.ca_file, check_hostname=False)
    )
    unchecked.start()
    assert unchecked.wait_for_leadership(WAIT) is not None


def test_plaintext_to_the_tls_port_says_the_port_speaks_tls(
    secure: LocalEnsemble, pki: TestPki, zk_path: str, elections: Callable[..., Election]
) -> None:
    election = elections(secure.secure_hosts, zk_path, "plaintext")
    with pytest.raises(TLSError, match="speaks TLS") as caught:
        election.start()
    assert "tls=TlsOptions" in str(caught.value)
    # And the other way round: TLS to the plaintext port.
    wrong_port = elections(secure.hosts, zk_path, "tls", tls=TlsOptions(ca_file=pki.ca_file))
    with pytest.raises(TLSError, match="plaintext clientPort"):
        wrong_port.start()


def test_unreachable_without_a_tls_answer_is_a_plain_connection_error(
    zk_path: str, elections: Callable[..., Election]
) -> None:
    config = ElectionConfig(connect_timeout=1.0)
    election = Election("127.0.0.1:1", zk_path, candidate_id="x", config=config)
    with pytest.raises(ConnectionFailedError) as caught:
        election.start()
    assert type(caught.value) is ConnectionFailedError
    assert "if these are TLS ports" in str(caught.value)


# -- the CLI ----------------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKELECT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zkelect.ops.cli.main", *args],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=90,
    )


class Run:
    """One ``zkelect run`` subprocess; its stderr lines are collected by a thread."""

    def __init__(self, *args: str, **env: str) -> None:
        self.proc = popen_tied(
            [sys.executable, "-m", "zkelect.ops.cli.main", "run", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(**env),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, pattern: str) -> str:
        regex = re.compile(pattern)
        found = wait_for(
            lambda: (
                next((ln for ln in self.lines if regex.search(ln)), None)
                or (self.proc.poll() is not None and "EXITED")
                or None
            ),
            timeout=WAIT,
            message=f"/{pattern}/ in zkelect run's output",
        )
        assert found != "EXITED", self.lines
        return str(found)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reader.join(timeout=5)


@pytest.fixture
def runs() -> Iterator[Callable[..., Run]]:
    made: list[Run] = []

    def make(*args: str, **env: str) -> Run:
        run = Run(*args, **env)
        made.append(run)
        return run

    yield make
    for run in made:
        run.stop()


def test_cli_run_and_status_over_tls_with_digest_auth_and_acl(
    secure: LocalEnsemble, pki: TestPki, zk_path: str, runs: Callable[..., Run]
) -> None:
    hosts = tls_hosts(secure)
    security = ["--tls-ca", str(pki.ca_file), "--auth", "digest:alice:alice-pw"]
    run = runs(
        zk_path, "--hosts", hosts, "--id", "tls-leader", *security,
        "--acl-writer", "self", "--acl-no-read", "--", "sleep", "600",
    )  # fmt: skip
    run.wait_line(r"elected: epoch=")

    status = cli("status", zk_path, "--hosts", hosts, "--json", *security)
    assert status.returncode == 0, status.stderr
    assert '"id": "tls-leader"' in status.stdout
    assert status.stderr == "", status.stderr  # the members answered cons over TLS too

    # Readers need credentials on this path; without TLS options the port says what it is.
    denied = cli("status", zk_path, "--hosts", hosts, "--tls-ca", str(pki.ca_file))
    assert denied.returncode == 1 and "no permission to read" in denied.stderr
    plaintext = cli("status", zk_path, "--hosts", hosts, "--timeout", "20")
    assert plaintext.returncode == 1
    assert "speaks TLS" in plaintext.stderr and "Traceback" not in plaintext.stderr
    assert len(plaintext.stderr.strip().splitlines()) == 1

    intruder = runs(zk_path, "--hosts", hosts, "--tls-ca", str(pki.ca_file), "--", "true")
    assert intruder.proc.wait(timeout=90) == 1
    intruder._reader.join(timeout=5)
    assert any("NoAuth" in line for line in intruder.lines), intruder.lines


def test_cli_sasl_user_reads_the_password_from_the_environment(
    secure: LocalEnsemble, zk_path: str, elections: Callable[..., Election]
) -> None:
    elections(secure.hosts, zk_path, "someone").start()
    ok = cli(
        "status", zk_path, "--hosts", secure.hosts, "--sasl-user", "bob",
        ZKELECT_SASL_PASSWORD=USERS["bob"],
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    wrong = cli(
        "status", zk_path, "--hosts", secure.hosts, "--sasl-user", "bob",
        ZKELECT_SASL_PASSWORD="nope",
    )  # fmt: skip
    assert wrong.returncode == 1 and "refused SASL" in wrong.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--tls-ca", "/nonexistent.pem"], "--tls-ca: no such file"),
     (["--sasl-user", "bob"], "ZKELECT_SASL_PASSWORD"),
     (["--auth", "digest"], "SCHEME:CREDENTIAL")],
)  # fmt: skip
@pytest.mark.parametrize("command", ["status", "watch", "resign", "doctor"])
def test_cli_bad_security_options_are_one_line_usage_errors(
    command: str, args: list[str], says: str
) -> None:
    proc = cli(command, "/elections/x", "--hosts", "127.0.0.1:1", *args)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
