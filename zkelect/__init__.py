"""zkelect: leader election on Apache ZooKeeper, with fencing epochs and metrics.

>>> from zkelect import Election
>>> election = Election("127.0.0.1:2181", "/elections/controller", candidate_id="node-a")
>>> with election.leadership() as lead:          # doctest: +SKIP
...     do_leader_work(lead.token)               # lead.epoch fences every write

The names that need kazoo (``Election``, ``Lifecycle``, ``LeaderInfo``, ``kazoo_options``)
are imported on first use (PEP 562), so that a service that only *receives* fencing tokens
(``FencingToken``, ``FencingGuard``, the fenced stores) imports zkelect without kazoo.
"""

import importlib
import typing

from zkelect._version import __version__
from zkelect._zookeeper.outcomes import ConnectionState
from zkelect.clock import Clock, ManualClock
from zkelect.config import ElectionConfig, SuspendedPolicy
from zkelect.errors import (
    ChrootMissingError,
    ConfigurationError,
    ConnectionFailedError,
    ElectionStoppedError,
    ElectionTimeoutError,
    InvalidTokenError,
    LeaderNotAnsweringError,
    LeadershipLostError,
    PermissionDeniedError,
    StaleEpochError,
    SwitchoverError,
    SwitchoverInProgressError,
    SwitchoverInterruptedError,
    SwitchoverRefusedError,
    TargetNotReadyError,
    TLSError,
    UnknownCandidateError,
    WriteFailedError,
    ZkElectError,
    ZooKeeperNotFoundError,
)
from zkelect.fencing.guard import FENCING_HEADER, Admission, FencingGuard, fencing_headers
from zkelect.fencing.leadership import FencedTransaction, Leadership
from zkelect.fencing.stores import FencedStore, PostgresFencedStore, SQLiteFencedStore
from zkelect.fencing.token import FencingToken
from zkelect.metrics import MetricsRecorder, NoopRecorder, PrometheusRecorder
from zkelect.security import DigestAuth, ElectionAcl, SaslOptions, TlsOptions

if typing.TYPE_CHECKING:  # what mypy and IDEs see; at run time see __getattr__
    from zkelect._election.election import Election, Lifecycle
    from zkelect._election.nodes import LeaderInfo
    from zkelect._election.switchover_request import SwitchoverResult
    from zkelect._zookeeper.options import kazoo_options

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
    "LeaderNotAnsweringError",
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
    "SwitchoverError",
    "SwitchoverInProgressError",
    "SwitchoverInterruptedError",
    "SwitchoverRefusedError",
    "SwitchoverResult",
    "TLSError",
    "TargetNotReadyError",
    "TlsOptions",
    "UnknownCandidateError",
    "WriteFailedError",
    "ZkElectError",
    "ZooKeeperNotFoundError",
    "__version__",
    "fencing_headers",
    "kazoo_options",
]

# The kazoo-backed names, and the module each is imported from on first use.
_LAZY = {
    "Election": "zkelect._election.election",
    "Lifecycle": "zkelect._election.election",
    "LeaderInfo": "zkelect._election.nodes",
    "SwitchoverResult": "zkelect._election.switchover_request",
    "kazoo_options": "zkelect._zookeeper.options",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'zkelect' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
