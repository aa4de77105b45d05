"""zkelect for asyncio: ``AsyncElection``, usable from one event loop without blocking it.

>>> from zkelect.aio import AsyncElection
>>> async def controller(lead):                      # doctest: +SKIP
...     while True:                                  # cancelled the moment leadership is lost
...         await lead.set_data("/controller/state", b"...")   # fenced by lead.epoch
...         await asyncio.sleep(1)
>>> election = AsyncElection("127.0.0.1:2181", "/elections/controller")
>>> await election.run_while_leader(controller)     # doctest: +SKIP

The candidacy runs on the session's threads as for ``Election``; the loop hears of each
flip in order. ``run_while_leader`` cancels its work before anything else on the loop hears
of a loss, and drains it before a planned step down deletes the node (docs/asyncio.md).
"""

from zkelect.aio._election import DEFAULT_GRACE, AsyncElection
from zkelect.aio._leadership import AsyncFencedTransaction, AsyncLeadership, LostSignal
from zkelect.aio._stores import AsyncFencedStore

__all__ = [
    "DEFAULT_GRACE",
    "AsyncElection",
    "AsyncFencedStore",
    "AsyncFencedTransaction",
    "AsyncLeadership",
    "LostSignal",
]
