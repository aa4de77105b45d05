"""One exception root and a short tree.

::

    ZkElectError
    ├── ConfigurationError        bad input: caught before anything is sent to ZooKeeper
    │   └── InvalidTokenError     a fencing token that is missing or malformed
    ├── ZooKeeperNotFoundError    no ZooKeeper installation to start local servers from
    ├── ConnectionFailedError     could not reach a serving quorum in time
    │   └── TLSError              every member failed the TLS handshake (trust, name, port)
    ├── PermissionDeniedError     ZooKeeper said NoAuth/AuthFailed (terminal, never retried)
    ├── ChrootMissingError        the connect string's chroot does not exist
    ├── ElectionStoppedError      the election is not running (not started, or stopped)
    ├── ElectionTimeoutError      not elected within the time you gave
    ├── WriteFailedError          an operation of a fenced write failed; nothing was applied
    ├── LeadershipLostError       this process does not (or no longer) lead
    │   └── StaleEpochError       a fenced write carried an epoch lower than one already seen
    └── SwitchoverError           a planned switchover did not happen (nothing left behind)
        ├── UnknownCandidateError      the target names no candidate (or several)
        ├── SwitchoverInProgressError  another switchover is pending
        ├── SwitchoverRefusedError     the leader refused (or there is nothing to switch)
        ├── LeaderNotAnsweringError    the leader did not take the request in time
        ├── TargetNotReadyError        the target never became ready behind the leader
        └── SwitchoverInterruptedError leadership moved another way meanwhile

Every message says what went wrong and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ChrootMissingError",
    "ConfigurationError",
    "ConnectionFailedError",
    "ElectionStoppedError",
    "ElectionTimeoutError",
    "InvalidTokenError",
    "LeaderNotAnsweringError",
    "LeadershipLostError",
    "PermissionDeniedError",
    "StaleEpochError",
    "SwitchoverError",
    "SwitchoverInProgressError",
    "SwitchoverInterruptedError",
    "SwitchoverRefusedError",
    "TLSError",
    "TargetNotReadyError",
    "UnknownCandidateError",
    "WriteFailedError",
    "ZkElectError",
    "ZooKeeperNotFoundError",
]


class ZkElectError(Exception):
    """Root of every error zkelect raises on purpose."""


class ConfigurationError(ZkElectError, ValueError):
    """Invalid configuration or argument; raised before anything is sent to ZooKeeper."""


class InvalidTokenError(ConfigurationError):
    """A fencing token is missing or malformed (e.g. a bad ``Fencing-Token`` header)."""


class ZooKeeperNotFoundError(ZkElectError):
    """No ZooKeeper distribution was found to start local servers from."""


class ConnectionFailedError(ZkElectError):
    """No serving ZooKeeper quorum could be reached in time."""


class TLSError(ConnectionFailedError):
    """No member completed a TLS handshake we accept: its certificate is not signed by a
    trusted CA or does not name the host, or the port and the client disagree on TLS.

    Terminal for this configuration: retrying cannot succeed until it changes.
    """


class PermissionDeniedError(ZkElectError):
    """ZooKeeper refused the request for lack of permission (NoAuth or AuthFailed).

    Terminal: retrying with the same credentials cannot succeed.
    """


class ChrootMissingError(ZkElectError):
    """The chroot named in the connect string does not exist on the ensemble."""


class ElectionStoppedError(ZkElectError):
    """The election was stopped (or never started) while a caller waited on it."""


class ElectionTimeoutError(ZkElectError, TimeoutError):
    """Leadership did not come within the timeout the caller gave."""


class WriteFailedError(ZkElectError):
    """One operation of a fenced ZooKeeper write failed (e.g. the node to set is missing,
    or a version check failed); the fence held, and nothing was applied."""


class LeadershipLostError(ZkElectError):
    """This candidate does not lead, or no longer leads; leader-only work must stop."""


class StaleEpochError(LeadershipLostError):
    """A write carried an epoch lower than the highest one the store has already accepted.

    ``epoch`` is the writer's, ``current_epoch`` the highest known (None if unknown).
    """

    def __init__(
        self,
        message: str,
        *,
        resource: str = "",
        epoch: int = 0,
        current_epoch: int | None = None,
    ) -> None:
        super().__init__(message)
        self.resource = resource
        self.epoch = epoch
        self.current_epoch = current_epoch


class SwitchoverError(ZkElectError):
    """A planned switchover did not happen. Its request node was deleted before this was
    raised, and the leader's work was not drained unless the message says so."""


class UnknownCandidateError(SwitchoverError):
    """The target names no candidate of the election (or several: name its node instead)."""


class SwitchoverInProgressError(SwitchoverError):
    """Another switchover of the same election is pending: one at a time."""


class SwitchoverRefusedError(SwitchoverError):
    """The leader refused the request (``refusal`` says why), or there is nothing to switch:
    no leader, or the target leads already."""

    def __init__(self, message: str, *, refusal: str = "") -> None:
        super().__init__(message)
        self.refusal = refusal


class LeaderNotAnsweringError(SwitchoverError, TimeoutError):
    """The leader did not take the request within the timeout (frozen, partitioned, or a
    recipe that knows no switchover): nothing changed. ``zkelect switchover --force`` falls
    back to a forced resign, which is not drained."""


class TargetNotReadyError(SwitchoverError, TimeoutError):
    """The leader took the request but the target never said it was ready behind it: its
    session is not connected, it is frozen, or a candidate ahead of it cannot step back (a
    Curator LeaderLatch, an older zkelect). The leader was not drained and still leads."""


class SwitchoverInterruptedError(SwitchoverError):
    """Leadership moved another way during the switchover (the target or the leader went).
    ``leader`` is who leads now (a ``zkelect.LeaderInfo``), or None."""

    def __init__(self, message: str, *, leader: object | None = None) -> None:
        super().__init__(message)
        self.leader = leader
