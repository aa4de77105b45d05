"""ZooKeeper's 64-bit ids in JSON that every reader parses exactly.

Session ids and zxids (an epoch is a czxid) are 64-bit; JSON numbers above 2^53 are rounded
silently by JavaScript and by ``jq`` (``jq .leader.session`` printed 216172798407540740 for
0x3000003cb2f0000). Every JSON document zkelect prints or serves (the CLI's ``--json``, the
HTTP endpoints) writes them with these functions: a session id as the ``0x…`` string
ZooKeeper's own tools print, an epoch as a decimal string with its hex beside it.
"""

from __future__ import annotations

__all__ = ["MAX_SAFE_INTEGER", "epoch_fields", "session_text"]

#: The largest integer a JSON reader that uses doubles (JavaScript, jq) keeps exactly.
MAX_SAFE_INTEGER = 2**53 - 1


def session_text(session_id: int | None) -> str | None:
    """A session id as ``0x…`` (None stays None)."""
    return None if session_id is None else f"{session_id:#x}"


def epoch_fields(epoch: int | None, name: str = "epoch") -> dict[str, str | None]:
    """``{name: "<decimal>", name_hex: "0x…"}`` (both None for no epoch)."""
    if epoch is None:
        return {name: None, f"{name}_hex": None}
    return {name: str(epoch), f"{name}_hex": f"{epoch:#x}"}
