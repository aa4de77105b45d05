"""Security options: validated when built, with messages that name the bad field."""

from __future__ import annotations

from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl_credential

from zkelect import (
    ConfigurationError,
    DigestAuth,
    Election,
    ElectionAcl,
    SaslOptions,
    TlsOptions,
    kazoo_options,
)
from zkelect._zookeeper.connect import TlsHandler
from zkelect._zookeeper.options import kazoo_acl
from zkelect.ops.cli.common import UsageError
from zkelect.ops.cli.security_options import client_security
from zkelect.security import ALL, READ, digest_id
from zkelect.testing.certs import make_test_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def test_digest_id_matches_kazoo_and_zookeeper() -> None:
    assert digest_id("alice", "s3cret") == make_digest_acl_credential("alice", "s3cret")
    assert DigestAuth("alice", "s3cret").acl_id == "digest:" + digest_id("alice", "s3cret")


def test_digest_auth_hides_its_password() -> None:
    assert "s3cret" not in repr(DigestAuth("alice", "s3cret"))
    assert "pw" not in repr(SaslOptions("bob", "pw"))


@pytest.mark.parametrize(
    ("user", "password", "says"),
    [("", "pw", "username"), ("a:b", "pw", "':'"), ("alice", "", "password"),
     ("al\nice", "pw", "username"), (3, "pw", "username")],
)  # fmt: skip
def test_digest_auth_rejects(user: object, password: object, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        DigestAuth(user, password)  # type: ignore[arg-type]


def test_acl_entries_writers_then_readers() -> None:
    alice = DigestAuth("alice", "pw")
    acl = ElectionAcl([alice, "sasl:bob", alice])
    assert acl.entries() == [
        ("digest", digest_id("alice", "pw"), ALL),
        ("sasl", "bob", ALL),
        ("world", "anyone", READ),
    ]
    assert ElectionAcl([alice], others_may_read=False).entries() == [
        ("digest", digest_id("alice", "pw"), ALL)
    ]
    assert acl.differences(acl.entries()) is None
    differs = acl.differences([("world", "anyone", 31)])
    assert differs is not None and "extra world:anyone:rwcda" in differs


@pytest.mark.parametrize(
    ("writers", "says"),
    [([], "at least one"), ("sasl:bob", "list"), (["digest:alice:nothash"], "HASH"),
     (["ip:10.0.0.1"], "use a DigestAuth"), ([42], "DigestAuth")],
)  # fmt: skip
def test_acl_rejects(writers: object, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        ElectionAcl(writers)  # type: ignore[arg-type]


def test_acl_accepts_a_digest_hash() -> None:
    ident = "digest:" + digest_id("carol", "pw")
    assert ElectionAcl([ident]).entries()[0] == ("digest", digest_id("carol", "pw"), ALL)


def test_tls_defaults_verify_and_check_hostname(pki) -> None:  # type: ignore[no-untyped-def]
    tls = TlsOptions(ca_file=pki.ca_file)
    assert tls.verify and tls.check_hostname
    context = tls.ssl_context()
    assert context.check_hostname
    import ssl

    assert context.verify_mode is ssl.CERT_REQUIRED


def test_tls_rejects(pki, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError, match="no such file"):
        TlsOptions(ca_file=tmp_path / "missing.pem")
    with pytest.raises(ConfigurationError, match="together"):
        TlsOptions(ca_file=pki.ca_file, cert_file=pki.client_cert)
    with pytest.raises(ConfigurationError, match="needs verify=True"):
        TlsOptions(ca_file=pki.ca_file, verify=False)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="cannot load"):
        TlsOptions(ca_file=garbage)
    with pytest.raises(ConfigurationError, match="cannot load"):  # key of another cert
        TlsOptions(ca_file=pki.ca_file, cert_file=pki.client_cert, key_file=pki.server_key)
    # Opting out is possible, but only by name.
    insecure = TlsOptions(ca_file=pki.ca_file, verify=False, check_hostname=False)
    assert not insecure.ssl_context().check_hostname


def test_sasl_rejects() -> None:
    with pytest.raises(ConfigurationError, match="DIGEST-MD5"):
        SaslOptions("bob", "pw", mechanism="GSSAPI")
    with pytest.raises(ConfigurationError, match="password"):
        SaslOptions("bob", "")


def test_kazoo_options(pki) -> None:  # type: ignore[no-untyped-def]
    alice = DigestAuth("alice", "pw")
    options = kazoo_options(
        auth=alice,
        acl=ElectionAcl([alice]),
        tls=TlsOptions(ca_file=pki.ca_file),
        sasl=SaslOptions("bob", "pw"),
    )
    assert options["auth_data"] == [("digest", "alice:pw")]
    assert options["sasl_options"] == {
        "mechanism": "DIGEST-MD5",
        "username": "bob",
        "password": "pw",
    }
    assert options["use_ssl"] and options["check_hostname"] and options["verify_certs"]
    assert isinstance(options["handler"], TlsHandler)
    client = KazooClient("127.0.0.1:1", **options)  # kazoo accepts them all
    assert client.default_acl == kazoo_acl(ElectionAcl([alice]))
    with pytest.raises(ConfigurationError, match="tls must be"):
        kazoo_options(tls="yes")  # type: ignore[arg-type]


def test_election_on_a_shared_client_needs_matching_options() -> None:
    alice = DigestAuth("alice", "pw")
    with pytest.raises(ConfigurationError, match="kazoo_options"):
        Election(KazooClient("127.0.0.1:1"), "/e", auth=alice)
    with pytest.raises(ConfigurationError, match="default_acl differs"):
        Election(KazooClient("127.0.0.1:1"), "/e", acl=ElectionAcl([alice]))
    matching = KazooClient("127.0.0.1:1", **kazoo_options(auth=alice, acl=ElectionAcl([alice])))
    Election(matching, "/e", acl=ElectionAcl([alice]))  # accepted
    with pytest.raises(ConfigurationError, match="acl must be"):
        Election("127.0.0.1:1", "/e", acl=[alice])  # type: ignore[arg-type]


def test_cli_security_options(pki, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ZKELECT_SASL_PASSWORD", raising=False)
    with pytest.raises(UsageError, match="ZKELECT_SASL_PASSWORD"):
        client_security(sasl_user="bob")
    monkeypatch.setenv("ZKELECT_SASL_PASSWORD", "pw")
    assert client_security(sasl_user="bob").sasl == SaslOptions("bob", "pw")
    with pytest.raises(UsageError, match="--tls-ca"):
        client_security(tls_ca="/nonexistent/ca.pem")
    with pytest.raises(UsageError, match="--tls-cert and --tls-key"):
        client_security(tls_ca=str(pki.ca_file), tls_cert=str(pki.client_cert))
    with pytest.raises(UsageError, match="SCHEME:CREDENTIAL"):
        client_security(auth="digest")
    with pytest.raises(UsageError, match="needs --acl-writer"):
        client_security(acl_no_read=True)
    with pytest.raises(UsageError, match="self needs"):
        client_security(acl_writers=["self"])
    security = client_security(
        auth="digest:alice:pw", acl_writers=["self", "sasl:bob"], acl_no_read=True,
        tls_ca=str(pki.ca_file), tls_no_verify_hostname=True,
    )  # fmt: skip
    assert security.acl is not None and not security.acl.others_may_read
    assert security.tls is not None and not security.tls.check_hostname and security.tls.verify
    assert security.election_kwargs()["auth"] == (DigestAuth("alice", "pw"),)
