"""Where LocalEnsemble's servers come from: a ZooKeeper installation and a Java runtime."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from zkelect.errors import ZooKeeperNotFoundError

__all__ = ["ZooKeeperInstall", "find_zookeeper"]

_INSTALL_HINT = (
    "apt-get install zookeeper (Debian/Ubuntu) or set ZOOKEEPER_HOME to an Apache ZooKeeper 3.5+ "
    "distribution"
)
_DEBIAN_JAVA_DIR = Path("/usr/share/java")
# Debian's /usr/share/java holds six SLF4J bindings plus log4j-over-slf4j. With "dir/*" the JVM
# binds whichever comes first in directory order: slf4j-nop (no logs at all) or slf4j-log4j12 next
# to log4j-over-slf4j (the server dies at start). So name the jars; zookeeper.jar's manifest
# Class-Path brings the rest. Netty is listed for NettyServerCnxnFactory (TLS).
_DEBIAN_JARS = (
    "zookeeper.jar",
    "zookeeper-jute.jar",
    "slf4j-api.jar",
    "slf4j-log4j12.jar",
    "log4j-1.2.jar",
    *(
        f"netty-{n}.jar"
        for n in (
            "buffer",
            "codec",
            "common",
            "handler",
            "resolver",
            "transport",
            "transport-native-epoll",
            "transport-native-unix-common",
        )
    ),
)


@dataclass(frozen=True)
class ZooKeeperInstall:
    """Where the server classes come from (``classpath``), for humans (``description``), and the
    ``java`` executable that runs them."""

    classpath: str
    description: str
    java: str = "java"


def _find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home, "bin", "java"), os.X_OK):
        return str(Path(java_home, "bin", "java"))
    found = shutil.which("java")
    if found is None:
        raise ZooKeeperNotFoundError(
            "no Java runtime: 'java' is not on PATH and JAVA_HOME/bin/java does not exist; "
            "apt-get install default-jre-headless (Debian/Ubuntu) or set JAVA_HOME to a JRE"
        )
    return found


def _classpath_in(home: Path) -> str | None:
    if (home / "zookeeper.jar").is_file():  # a distribution's shared jar dir, Debian-style
        return ":".join(str(home / j) for j in _DEBIAN_JARS if (home / j).exists())
    if any((home / "lib").glob("zookeeper*.jar")) or any(home.glob("zookeeper*.jar")):
        return f"{home}/lib/*:{home}/*" if (home / "lib").is_dir() else f"{home}/*"
    return None


def find_zookeeper(zookeeper_home: str | None = None) -> ZooKeeperInstall:
    """Locate ZooKeeper: the argument, else $ZOOKEEPER_HOME, else Debian's package; and java."""
    home = zookeeper_home or os.environ.get("ZOOKEEPER_HOME")
    if home:
        classpath = _classpath_in(Path(home))
        if classpath is None:
            source = "zookeeper_home" if zookeeper_home else "ZOOKEEPER_HOME"
            raise ZooKeeperNotFoundError(
                f"{source}={home} holds no zookeeper*.jar (looked in it and its lib/): "
                + _INSTALL_HINT
            )
        description = f"ZooKeeper at {home}"
    elif (_DEBIAN_JAVA_DIR / "zookeeper.jar").is_file():
        classpath = _classpath_in(_DEBIAN_JAVA_DIR) or ""
        description = f"Debian zookeeper package ({_DEBIAN_JAVA_DIR})"
    else:
        raise ZooKeeperNotFoundError(f"ZooKeeper is not installed: {_INSTALL_HINT}")
    return ZooKeeperInstall(classpath=classpath, description=description, java=_find_java())
