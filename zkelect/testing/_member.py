"""One LocalEnsemble member on disk: the files it runs from (zoo.cfg, myid, logging, the TLS
keystore), the server-side TLS and SASL settings they hold, and what its logs say when it dies."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from zkelect.errors import ConfigurationError

__all__ = [
    "LOG_NAMES",
    "Member",
    "ServerSasl",
    "ServerSpec",
    "ServerTls",
    "check_extra_config",
    "proc_state",
    "why_exited",
    "write_member_files",
]

LOG_NAMES = ("zookeeper.log", "console.log")  # log4j/logback's file; the JVM's stdout+stderr
_MANAGED_KEYS = {
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "dynamicConfigFile",
    "tickTime",
    "minSessionTimeout",
    "maxSessionTimeout",
    "standaloneEnabled",
}
_LOG4J = """log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.RollingFileAppender
log4j.appender.FILE.File={log}
log4j.appender.FILE.MaxFileSize=2MB
log4j.appender.FILE.MaxBackupIndex=1
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{{ISO8601}} %-5p [%t] %c{{1}} - %m%n
"""
_LOGBACK = """<configuration>
 <appender name="FILE" class="ch.qos.logback.core.rolling.RollingFileAppender">
  <file>{log}</file>
  <rollingPolicy class="ch.qos.logback.core.rolling.FixedWindowRollingPolicy">
   <fileNamePattern>{log}.%i</fileNamePattern><minIndex>1</minIndex><maxIndex>1</maxIndex>
  </rollingPolicy>
  <triggeringPolicy class="ch.qos.logback.core.rolling.SizeBasedTriggeringPolicy">
   <maxFileSize>2MB</maxFileSize></triggeringPolicy>
  <encoder><pattern>%d{{ISO8601}} %-5p [%t] %c{{1}} - %m%n</pattern></encoder>
 </appender>
 <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
"""


@dataclass(frozen=True)
class ServerTls:
    """A TLS client port on every member (ZooKeeper's Netty server; PEM files, 3.8+).

    ``cert_file`` and ``key_file`` are the servers' certificate (chain) and unencrypted key;
    ``ca_file`` is the CA the servers trust for client certificates. ``client_auth``: "none"
    (clients need no certificate), "want" or "need" (a client must show one signed by
    ``ca_file``). The plaintext client port stays open too (for the four-letter words and
    for tests that compare); the TLS one is ``secure_client_port(i)`` / ``secure_hosts``.
    """

    cert_file: str | Path
    key_file: str | Path
    ca_file: str | Path
    client_auth: str = "none"

    def __post_init__(self) -> None:
        for name in ("cert_file", "key_file", "ca_file"):
            value = getattr(self, name)
            if not isinstance(value, (str, Path)) or not Path(value).is_file():
                raise ConfigurationError(
                    f"ServerTls.{name} must be an existing file, got {value!r}"
                )
        if self.client_auth not in ("none", "want", "need"):
            raise ConfigurationError(
                f"ServerTls.client_auth must be 'none', 'want' or 'need', got {self.client_auth!r}"
            )


@dataclass(frozen=True)
class ServerSasl:
    """SASL DIGEST-MD5 on every member: a JAAS ``Server`` section with these users.

    ``required``: refuse every client that has not authenticated with SASL
    (``enforce.auth.enabled``, ZooKeeper 3.8+); otherwise SASL is offered and an
    unauthenticated client is held off only by ACLs (e.g. ``sasl:<user>`` ones).
    """

    users: Mapping[str, str]
    required: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.users, Mapping) or not self.users:
            raise ConfigurationError("ServerSasl.users must be a non-empty {user: password} map")
        for user, password in self.users.items():
            if (
                not isinstance(user, str)
                or not isinstance(password, str)
                or not user
                or not user.replace("_", "").replace("-", "").isalnum()
                or not password
                or any(c in password for c in '"\\\n\r')
            ):
                raise ConfigurationError(
                    f"ServerSasl user {user!r}: names are letters, digits, '-' and '_'; "
                    "passwords are non-empty, without quotes, backslashes or line breaks"
                )

    def jaas(self) -> str:
        users = "".join(f'\n    user_{u}="{p}"' for u, p in self.users.items())
        return (
            "Server {\n"
            "    org.apache.zookeeper.server.auth.DigestLoginModule required"
            f"{users};\n}};\n"
        )


@dataclass(frozen=True)
class ServerSpec:
    """What every member's zoo.cfg says alike: the ensemble's size, timing and security."""

    size: int
    tick_time_ms: int
    min_session_timeout_ms: int
    max_session_timeout_ms: int
    tls: ServerTls | None = None
    sasl: ServerSasl | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


def check_extra_config(extra_config: object) -> dict[str, str]:
    """``extra_config`` as zoo.cfg lines, refusing what is malformed or managed by us."""
    if extra_config is not None and not isinstance(extra_config, Mapping):
        raise ConfigurationError(f"extra_config must be a mapping, got {extra_config!r}")
    extra = dict(extra_config or {})
    for key, value in extra.items():
        if (
            not isinstance(key, str)
            or not isinstance(value, str)
            or not key.strip()
            or any(c in key for c in "=\n\r \t")
            or any(c in value for c in "\n\r")
        ):
            raise ConfigurationError(
                f"extra_config entry {key!r}={value!r} is not a valid "
                "zoo.cfg line (str key without '='/blanks, one-line str)"
            )
        if key in _MANAGED_KEYS or key.startswith("server."):
            raise ConfigurationError(
                f"extra_config may not set {key!r}: LocalEnsemble "
                "manages it (ports, dirs, membership, or an argument)"
            )
    return extra


@dataclass
class Member:
    """One member: its directory, ports and process."""

    index: int
    dir: Path
    client_port: int
    peer_port: int
    election_port: int
    secure_port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False
    log_offsets: tuple[int, int] = (0, 0)  # log sizes at launch: read only this run's lines

    @property
    def logs(self) -> str:
        return ", ".join(str(self.dir / name) for name in LOG_NAMES)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def write_member_files(m: Member, peers: list[Member], spec: ServerSpec) -> None:
    """Write member ``m``'s dataDir, myid, logging configs and zoo.cfg (``peers``: every member)."""
    (m.dir / "data").mkdir(parents=True, exist_ok=True)
    (m.dir / "conf").mkdir(exist_ok=True)
    (m.dir / "data" / "myid").write_text(f"{m.index + 1}\n")
    log = m.dir / "zookeeper.log"
    (m.dir / "conf" / "log4j.properties").write_text(_LOG4J.format(log=log))
    (m.dir / "conf" / "logback.xml").write_text(_LOGBACK.format(log=escape(str(log))))
    cfg = {
        "tickTime": str(spec.tick_time_ms),
        "initLimit": "10",
        "syncLimit": "5",
        "dataDir": str(m.dir / "data"),
        "clientPort": str(m.client_port),
        "clientPortAddress": "127.0.0.1",
        "maxClientCnxns": "0",
        "minSessionTimeout": str(spec.min_session_timeout_ms),
        "maxSessionTimeout": str(spec.max_session_timeout_ms),
        "4lw.commands.whitelist": "*",
        "admin.enableServer": "false",
        "reconfigEnabled": "false",
        "standaloneEnabled": str(spec.size == 1).lower(),
    }
    if spec.size > 1:
        cfg.update(
            {f"server.{p.index + 1}": f"127.0.0.1:{p.peer_port}:{p.election_port}" for p in peers}
        )
    cfg.update(_security_lines(m, spec))
    cfg.update(spec.extra)
    (m.dir / "zoo.cfg").write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))


def _security_lines(m: Member, spec: ServerSpec) -> dict[str, str]:
    """zoo.cfg lines for TLS and SASL (unknown keys become zookeeper.* properties)."""
    cfg: dict[str, str] = {}
    tls = spec.tls
    if tls is not None:
        # ZooKeeper's PEM keystore is one file: the key, then the certificate chain.
        keystore = m.dir / "conf" / "server-keystore.pem"
        keystore.write_bytes(Path(tls.key_file).read_bytes() + Path(tls.cert_file).read_bytes())
        keystore.chmod(0o600)
        cfg.update(
            {
                "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
                "secureClientPort": str(m.secure_port),
                "secureClientPortAddress": "127.0.0.1",
                "ssl.keyStore.location": str(keystore),
                "ssl.keyStore.type": "PEM",
                "ssl.trustStore.location": str(Path(tls.ca_file).resolve()),
                "ssl.trustStore.type": "PEM",
                "ssl.clientAuth": tls.client_auth,
                # The servers would check a client certificate's name against the client's
                # address; clients are identified by their certificate's CA, not their IP.
                "ssl.hostnameVerification": "false",
            }
        )
    if spec.sasl is not None:
        cfg["authProvider.1"] = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
        if spec.sasl.required:
            cfg["enforce.auth.enabled"] = "true"
            cfg["enforce.auth.schemes"] = "sasl"
    return cfg


def proc_state(pid: int) -> str | None:
    """The kernel's one-letter process state ("T" = stopped), or None without procfs."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def why_exited(m: Member) -> str:
    """The most telling line of a dead member's logs, so the error explains itself."""
    text = ""
    for name, offset in zip(LOG_NAMES, m.log_offsets, strict=True):
        with contextlib.suppress(OSError), open(m.dir / name, "rb") as log:
            log.seek(offset)
            text += log.read().decode(errors="replace")
    if "Address already in use" in text:
        return ": Address already in use"
    errors = [ln.split(" - ", 1)[-1] for ln in text.splitlines() if " ERROR " in ln]
    return f": {errors[0]}" if errors else ""
