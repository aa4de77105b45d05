"""The fencing token: who led a path, with which epoch (R8).

``FencingToken`` names a leader: its epoch (the czxid of the leader's candidate node; a
later leader's epoch is always higher), the election path, the candidate id and the
session. ``str(token)`` is a compact form for HTTP headers and environment variables;
``FencingToken.parse`` reads it back. Tokens compare by epoch.

Plain values, no ZooKeeper: a service that only *receives* tokens imports this (through
``zkelect.fencing``) without kazoo.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from zkelect.config import validate_path
from zkelect.errors import ConfigurationError, InvalidTokenError

__all__ = ["FencingToken", "describe_epoch"]

_TOKEN_VERSION = "zk1"


def describe_epoch(epoch: int | None) -> str:
    """Epochs are zxids: hex shows the ZooKeeper epoch (high 32 bits) and counter."""
    return "unknown" if epoch is None else f"{epoch:#x}"


_MAX_EPOCH = (1 << 63) - 1  # epochs are zxids: positive signed 64-bit integers
_SESSION_RANGE = range(-(1 << 63), 1 << 63)  # session ids are signed 64-bit (server id >= 128)


@dataclass(frozen=True)
class FencingToken:
    """Who led, when: ``epoch`` (czxid of the leader's node) orders leaders of a path.

    Tokens compare by epoch: a higher epoch belongs to a later leader, always. Validated when
    built (InvalidTokenError), so that every token can be printed and parsed back.
    """

    epoch: int
    path: str
    candidate_id: str
    session_id: int

    def __post_init__(self) -> None:
        epoch, session = self.epoch, self.session_id
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 < epoch <= _MAX_EPOCH:
            raise InvalidTokenError(
                f"a fencing token's epoch must be an int in 1..2**63-1 (a czxid), got {epoch!r}"
            )
        if (
            isinstance(session, bool)
            or not isinstance(session, int)
            or session not in (_SESSION_RANGE)
        ):
            raise InvalidTokenError(
                f"a fencing token's session_id must be a signed 64-bit int, got {session!r}"
            )
        try:
            validate_path(self.path, what="a fencing token's path")
        except ConfigurationError as exc:
            raise InvalidTokenError(str(exc)) from None
        ident = self.candidate_id
        if not isinstance(ident, str) or _encodes_badly(ident):
            raise InvalidTokenError(
                f"a fencing token's candidate_id must be a UTF-8 str, got {ident!r}"
            )

    def __lt__(self, other: FencingToken) -> bool:
        return self.epoch < other.epoch

    def __le__(self, other: FencingToken) -> bool:
        return self.epoch <= other.epoch

    def __gt__(self, other: FencingToken) -> bool:
        return self.epoch > other.epoch

    def __ge__(self, other: FencingToken) -> bool:
        return self.epoch >= other.epoch

    def __str__(self) -> str:
        """``zk1:<epoch>:<session hex>:<base64url id>:<path>``; see ``parse``."""
        ident = base64.urlsafe_b64encode(self.candidate_id.encode()).decode().rstrip("=")
        return f"{_TOKEN_VERSION}:{self.epoch}:{self.session_id:x}:{ident}:{self.path}"

    @classmethod
    def parse(cls, text: object) -> FencingToken:
        """The inverse of ``str(token)``; InvalidTokenError on anything malformed.

        Only the exact form ``str()`` prints is accepted (no signs, blanks, underscores,
        leading zeros, non-ASCII digits or padding), so a token has one spelling.
        """
        parts = text.split(":", 4) if isinstance(text, str) else []
        if len(parts) != 5 or parts[0] != _TOKEN_VERSION:
            raise InvalidTokenError(
                "not a zkelect fencing token (expected 'zk1:<epoch>:<session>:<id>:<path>'): "
                f"{_cut(text)}"
            )
        _, epoch, session, ident, path = parts
        try:
            if not (_DECIMAL.fullmatch(epoch) and _HEX.fullmatch(session)):
                raise ValueError("not canonical digits")
            padded = ident + "=" * (-len(ident) % 4)
            candidate = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
            token = cls(int(epoch), path, candidate, int(session, 16))
        except InvalidTokenError as exc:  # a field out of range (before ValueError: it is one)
            raise InvalidTokenError(f"malformed fencing token ({exc}): {_cut(text)}") from None
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidTokenError(f"malformed fencing token: {_cut(text)}") from None
        if str(token) != text:  # e.g. base64 with '+' or '/' or stray bits
            raise InvalidTokenError(f"malformed fencing token (not canonical): {_cut(text)}")
        return token


_DECIMAL = re.compile("[1-9][0-9]*")
_HEX = re.compile("-?(0|[1-9a-f][0-9a-f]*)")
_MAX_SHOWN = 200  # characters of a bad token quoted in an error (a header may be huge)


def _cut(text: object) -> str:
    shown = repr(text)
    return shown if len(shown) <= _MAX_SHOWN else shown[: _MAX_SHOWN - 1] + "…"


def _encodes_badly(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
