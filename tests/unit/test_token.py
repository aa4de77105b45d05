"""The fencing token's text form (the lease's arithmetic is in test_lease.py)."""

from __future__ import annotations

import pytest

from zkelect import ConfigurationError, FencingToken


def test_token_orders_by_epoch_and_round_trips() -> None:
    older = FencingToken(0x100000004, "/e/x", "node:a", 0xABC)
    newer = FencingToken(0x100000009, "/e/x", "node-b", 0xDEF)
    assert older < newer and newer > older and older <= older
    assert FencingToken.parse(str(older)) == older
    assert FencingToken.parse(str(newer)) == newer


@pytest.mark.parametrize(
    "text",
    [
        "",
        "zk1:1:2:3",
        "zk2:1:a:bm9kZQ:/x",
        "zk1:x:a:bm9kZQ:/x",
        "zk1:5:zz:bm9kZQ:/x",
        "zk1:5:a:bm9kZQ:relative",
        "zk1:0:a:bm9kZQ:/x",
        "zk1:5:a:%%%:/x",
    ],
)
def test_malformed_tokens_are_rejected(text: str) -> None:
    with pytest.raises(ConfigurationError):
        FencingToken.parse(text)
