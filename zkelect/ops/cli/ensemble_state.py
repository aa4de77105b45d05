"""Where ``zkelect ensemble`` records the dev ensemble it runs, and whether it still runs.

Read by ensemble.py (up, down, status) and by every other command that is given no hosts
(common.given_hosts: they use the dev ensemble when one runs). A process is recognised by
/proc/PID/cmdline, never by name, so a recycled PID is never taken for a keeper or member.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from zkelect.errors import ZkElectError

__all__ = [
    "ENSEMBLE_DIR_ENV",
    "KEEPER_COMMAND",
    "STATE_FILE",
    "STATE_VERSION",
    "EnsembleStateError",
    "alive",
    "cmdline",
    "default_dir",
    "discovery_dir",
    "is_keeper",
    "is_member",
    "is_running",
    "read_state",
    "resolve_dir",
    "running_ensemble",
]

ENSEMBLE_DIR_ENV = "ZKELECT_ENSEMBLE_DIR"
STATE_FILE = "ensemble.json"
STATE_VERSION = 1
#: How 'up' starts the keeper (and how 'down' recognises it): a hidden command of ensemble.py.
KEEPER_COMMAND = ("-m", "zkelect.ops.cli.main", "ensemble", "keeper")


class EnsembleStateError(ZkElectError):
    """The state file cannot be read, or is not one ``zkelect ensemble`` wrote."""


def default_dir() -> Path:
    """$ZKELECT_ENSEMBLE_DIR's default: $XDG_STATE_HOME/zkelect/ensemble, else
    ~/.zkelect/ensemble. A relative $XDG_STATE_HOME is ignored, as the XDG spec asks (it
    would put the state somewhere new in every working directory)."""
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "zkelect" / "ensemble"
    return Path.home() / ".zkelect" / "ensemble"


def resolve_dir(directory: Path | None) -> Path:
    return (directory or default_dir()).expanduser().resolve()


def cmdline(pid: int) -> list[str] | None:
    """The process's argv, or None if it is gone (or a zombie: its cmdline is empty)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return None
    return raw.decode(errors="replace").rstrip("\0").split("\0")


def is_keeper(pid: int, directory: Path) -> bool:
    argv = cmdline(pid)
    return (
        argv is not None
        and tuple(argv[1 : 1 + len(KEEPER_COMMAND)]) == KEEPER_COMMAND
        and str(directory) in argv
    )


def is_member(pid: int, directory: Path, member_dir: str) -> bool:
    argv = cmdline(pid)
    return (
        argv is not None
        and Path(member_dir).parent == directory
        and "org.apache.zookeeper.server.quorum.QuorumPeerMain" in argv
        and f"{member_dir}/zoo.cfg" in argv
    )


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def read_state(directory: Path) -> dict[str, Any] | None:
    """The state file of ``directory``, None if there is none."""
    path = directory / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise EnsembleStateError(
            f"cannot read {path}: {exc}; remove it if no ensemble runs there"
        ) from None
    if (
        not isinstance(state, dict)
        or state.get("version") != STATE_VERSION
        or not {"hosts", "keeper_pid", "members"} <= state.keys()
    ):
        raise EnsembleStateError(
            f"{path} is not a zkelect ensemble state file (version {STATE_VERSION})"
        )
    return state


def is_running(directory: Path, state: dict[str, Any]) -> bool:
    return is_keeper(int(state["keeper_pid"]), directory)


def discovery_dir() -> Path:
    """Where the commands given no hosts look for a dev ensemble: $ZKELECT_ENSEMBLE_DIR,
    else :func:`default_dir` (where a bare ``zkelect ensemble up`` puts it)."""
    configured = os.environ.get(ENSEMBLE_DIR_ENV)
    return resolve_dir(Path(configured) if configured else None)


def running_ensemble() -> tuple[Path, str] | None:
    """(directory, connect string) of the ensemble running in :func:`discovery_dir`, or
    None."""
    home = discovery_dir()
    try:
        state = read_state(home) if home.is_dir() else None
    except EnsembleStateError:
        return None  # 'zkelect ensemble status' says what is wrong with it
    if state is None or not is_running(home, state):
        return None
    return home, str(state["hosts"])
