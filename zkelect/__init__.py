"""zkelect: leader election on Apache ZooKeeper, with fencing epochs and metrics.

>>> from zkelect import Election
>>> election = Election("127.0.0.1:2181", "/elections/controller", candidate_id="node-a")
>>> with election.leadership() as lead:          # doctest: +SKIP
...     do_leader_work(lead.token)               # lead.epoch fences every write
"""

from ._version import __version__
from .candidate import LeaderInfo
from .clock import Clock, ManualClock
from .config import ElectionConfig, SuspendedPolicy
from .election import Election, Lifecycle
from .errors import (
    ChrootMissingError,
    ConfigurationError,
    ConnectionFailedError,
    ElectionStoppedError,
    ElectionTimeoutError,
    LeadershipLostError,
    PermissionDeniedError,
    StaleEpochError,
    ZkElectError,
    ZooKeeperNotFoundError,
)
from .fencing import FencedTransaction, FencingToken, Leadership
from .metrics import MetricsRecorder, NoopRecorder
from .session import ConnectionState

__all__ = [
    "ChrootMissingError",
    "Clock",
    "ConfigurationError",
    "ConnectionFailedError",
    "ConnectionState",
    "Election",
    "ElectionConfig",
    "ElectionStoppedError",
    "ElectionTimeoutError",
    "FencedTransaction",
    "FencingToken",
    "LeaderInfo",
    "Leadership",
    "LeadershipLostError",
    "Lifecycle",
    "ManualClock",
    "MetricsRecorder",
    "NoopRecorder",
    "PermissionDeniedError",
    "StaleEpochError",
    "SuspendedPolicy",
    "ZkElectError",
    "ZooKeeperNotFoundError",
    "__version__",
]
