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
    InvalidTokenError,
    LeadershipLostError,
    PermissionDeniedError,
    StaleEpochError,
    TLSError,
    WriteFailedError,
    ZkElectError,
    ZooKeeperNotFoundError,
)
from .fencing import FencedTransaction, FencingToken, Leadership
from .guard import FENCING_HEADER, Admission, FencingGuard, fencing_headers
from .metrics import MetricsRecorder, NoopRecorder, PrometheusRecorder
from .security import DigestAuth, ElectionAcl, SaslOptions, TlsOptions, kazoo_options
from .session import ConnectionState
from .stores import FencedStore, PostgresFencedStore, SQLiteFencedStore

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
