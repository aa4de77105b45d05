"""zkelect: leader election on Apache ZooKeeper, with fencing epochs and metrics.

>>> from zkelect import Election
>>> election = Election("127.0.0.1:2181", "/elections/controller", candidate_id="node-a")
>>> with election.leadership() as lead:          # doctest: +SKIP
...     do_leader_work(lead.token)               # lead.epoch fences every write
"""

from zkelect._election.election import Election, Lifecycle
from zkelect._election.nodes import LeaderInfo
from zkelect._version import __version__
from zkelect._zookeeper.session import ConnectionState
from zkelect.clock import Clock, ManualClock
from zkelect.config import ElectionConfig, SuspendedPolicy
from zkelect.errors import (
    ChrootMissingError,
    ConfigurationError,
    ConnectionFailedError,
    ElectionStoppedError,
    ElectionTimeoutError,
    InvalidTokenError,
    LeadershipLostError,
    PermissionDeniedError,
    StaleEpochError,
    TLSError,
    WriteFailedError,
    ZkElectError,
    ZooKeeperNotFoundError,
)
from zkelect.fencing.guard import FENCING_HEADER, Admission, FencingGuard, fencing_headers
from zkelect.fencing.leadership import FencedTransaction, FencingToken, Leadership
from zkelect.fencing.stores import FencedStore, PostgresFencedStore, SQLiteFencedStore
from zkelect.metrics import MetricsRecorder, NoopRecorder, PrometheusRecorder
from zkelect.security import DigestAuth, ElectionAcl, SaslOptions, TlsOptions, kazoo_options

__all__ = [
    "FENCING_HEADER",
    "Admission",
    "ChrootMissingError",
    "Clock",
    "ConfigurationError",
    "ConnectionFailedError",
    "ConnectionState",
    "DigestAuth",
    "Election",
    "ElectionAcl",
    "ElectionConfig",
    "ElectionStoppedError",
    "ElectionTimeoutError",
    "FencedStore",
    "FencedTransaction",
    "FencingGuard",
    "FencingToken",
    "InvalidTokenError",
    "LeaderInfo",
    "Leadership",
    "LeadershipLostError",
    "Lifecycle",
    "ManualClock",
    "MetricsRecorder",
    "NoopRecorder",
    "PermissionDeniedError",
    "PostgresFencedStore",
    "PrometheusRecorder",
    "SQLiteFencedStore",
    "SaslOptions",
    "StaleEpochError",
    "SuspendedPolicy",
    "TLSError",
    "TlsOptions",
    "WriteFailedError",
    "ZkElectError",
    "ZooKeeperNotFoundError",
    "__version__",
    "fencing_headers",
    "kazoo_options",
]
