"""The checks behind ``zkelect doctor``: a deployment against the classic pitfalls.

Two halves, kept apart so the rules are testable without servers:

* **Gathering** (:func:`observe`): four-letter words (``srvr``, ``conf``; ``mntr`` when
  ``srvr`` is refused) to every member of the connect string, in parallel, each bounded by
  ``timeout``; one kazoo session (unless the words already prove that no member serves) to
  read ``/zookeeper/config``, the election path's ACL and its children with its stat; name
  resolution of the members to tell whether they run on this host. Nothing is written.
* **Judging** (``check_*`` and :func:`run_checks`): pure functions from what was seen to
  one :class:`CheckResult` per check (``ok`` / ``warn`` / ``fail``, the reason, the fix).

Thresholds (all in this module, named):

* ensemble size: 2 voting members fail (any single failure stops the ensemble: worse than
  one server), other even sizes warn (they tolerate no more failures than one member
  fewer), a single server warns (no fault tolerance);
* quorum: fewer than ``size // 2 + 1`` voting members serving fails; a quorum with members
  down warns;
* session timeout: outside ``[minSessionTimeout, maxSessionTimeout]`` warns (the servers
  negotiate it into that range);
* lease: below :data:`MIN_REALISTIC_LEASE` seconds warns; a session timeout below
  ``2 * syncLimit * tickTime`` warns; a lease margin (``timeout * ratio``) below
  ``(syncLimit + 1) * tickTime`` warns, a session shorter than 2 ticks warns (see
  :func:`check_lease` for why); the figure is the lease the candidates apply;
* grace: a ``zkelect run --grace`` longer than the lease's margin warns: it is cut short
  after a loss the candidate did not choose (:func:`check_grace`);
* co-location: any member on this host warns;
* election path: ``world:anyone`` holding CREATE, DELETE or ADMIN fails; a missing path
  warns;
* sequence wrap: string order (Curator's, kazoo's) electing another node than zkelect's
  order fails; a negative sequence number (a contender's, or the next one) warns; fewer
  than :data:`SEQUENCE_WRAP_MARGIN` numbers left before the counter wraps warns;
* four-letter words: any of ``srvr``/``conf`` refused by a member warns.
"""

from __future__ import annotations

from zkelect.ops.doctor.checks_ensemble import (
    check_colocation,
    check_ensemble_size,
    check_four_letter_words,
    check_quorum,
)
from zkelect.ops.doctor.checks_lease import (
    MIN_REALISTIC_LEASE,
    check_grace,
    check_lease,
    check_session_timeout,
    negotiated_timeout_ms,
)
from zkelect.ops.doctor.checks_path import (
    DANGEROUS_WORLD_PERMS,
    SEQUENCE_WRAP_MARGIN,
    check_path_acl,
    check_sequence_wrap,
)
from zkelect.ops.doctor.judge import (
    diagnose,
    run_checks,
    worst,
)
from zkelect.ops.doctor.model import (
    CHECK_NAMES,
    AclView,
    CheckResult,
    MemberView,
    Observation,
    SequenceView,
    Status,
)
from zkelect.ops.doctor.observe import (
    observe,
)
from zkelect.ops.doctor.parse import (
    ServerEntry,
    ServerSettings,
    format_perms,
    parse_conf,
    parse_membership,
)

__all__ = [
    "CHECK_NAMES",
    "DANGEROUS_WORLD_PERMS",
    "MIN_REALISTIC_LEASE",
    "SEQUENCE_WRAP_MARGIN",
    "AclView",
    "CheckResult",
    "MemberView",
    "Observation",
    "SequenceView",
    "ServerEntry",
    "ServerSettings",
    "Status",
    "check_colocation",
    "check_ensemble_size",
    "check_four_letter_words",
    "check_grace",
    "check_lease",
    "check_path_acl",
    "check_quorum",
    "check_sequence_wrap",
    "check_session_timeout",
    "diagnose",
    "format_perms",
    "negotiated_timeout_ms",
    "observe",
    "parse_conf",
    "parse_membership",
    "run_checks",
    "worst",
]
