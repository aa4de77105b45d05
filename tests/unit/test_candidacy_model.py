"""Model-based test of the candidacy (issue 14): the real state machine, 3-5 candidates,
driven against a simulated ZooKeeper (zk_model.py) by hypothesis' stateful testing.

Hypothesis chooses every interleaving the real system allows and a real-server test only
samples: when the server processes each session's requests, when each session's
notifications and answers are delivered (in order within a session, at any delay across
sessions), when each candidate's actor runs its next message, when the clock fires the
timers, and when the world intervenes (a resign, a stop, a new candidate, a dropped
connection, an expired session, a deleted election path, foreign nodes, a counter about to
wrap). After EVERY step:

(1) whenever two candidates believe they lead, at least one of their nodes is deleted;
(2) a believer whose node still exists owns the first node in zkelect's order (of the
    live children named like candidates; persistent foreign nodes are not candidates).

And at the end (teardown), every session connected again and everything delivered, run and
fired to quiescence: (3) no candidate is stuck: every running candidate has its node, and
if any candidate node exists, exactly one candidate leads, with the first node; (4) when it
was elected is known: its node was first when created, or its leader marker exists (R13).

The default run is quick (200 examples); ``ZKELECT_MODEL_EXAMPLES=6000`` explores longer
(minutes; pytest-timeout is lifted then). This is in addition to the real-ZooKeeper tests
(tests/integration), never instead.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial

import pytest
from candidacy_support import NullObserver
from hypothesis import HealthCheck, settings
from hypothesis import Phase as HypothesisPhase
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from zk_model import PATH, ModelSession, ModelTimers, Server, wrap32

from zkelect._election._watching import Watches
from zkelect._election.candidacy import Candidacy
from zkelect._election.messages import Lifecycle, Message, Resign, SessionChanged, Start, Stop
from zkelect._election.nodes import leader_marker, new_node_prefix
from zkelect._election.standing import Standing
from zkelect._zookeeper.outcomes import ConnectionState
from zkelect.clock import ManualClock
from zkelect.config import ElectionConfig
from zkelect.metrics import NoopRecorder

EXAMPLES = int(os.environ.get("ZKELECT_MODEL_EXAMPLES", "200"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
_NEAR_WRAP = 2**31 - 4  # a few creates and deletes from the wrap
_SETTLE_LIMIT = 5000  # actions before quiescence; beyond, the election livelocks


class Actor:
    """One candidacy and its actor's mailbox; the test runs its messages one at a time.

    ``post`` queues; ``run_here`` handles at once when the actor is idle (no message queued,
    none running), as ``Actor.run_here`` does on kazoo's callback thread or a caller's."""

    def __init__(
        self,
        session: ModelSession,
        name: str,
        clock: ManualClock,
        *,
        revoke_on_suspend: bool,
        watches: type[Watches],
    ) -> None:
        self.session = session
        self.name = name
        self.mailbox: deque[Message] = deque()
        self.busy = False
        self.stop_done: Future[None] | None = None
        self.standing = Standing(
            session,
            PATH,
            name,
            clock=clock,
            metrics=NoopRecorder(),
            on_elected=None,
            on_revoked=None,
            request_timeout=1.0,
            revoke_on_suspend=revoke_on_suspend,
        )
        self.standing.enter_started()
        self.candidacy = Candidacy(
            session,
            PATH,
            name.encode(),
            config=ElectionConfig(),
            clock=clock,
            metrics=NoopRecorder(),
            standing=self.standing,
            observer=NullObserver(),
            observing=False,
        )
        if watches is not Watches:  # a broken variant, to show the invariants bite
            broken = watches(session, PATH)
            self.candidacy._watches = self.candidacy._looks._watches = broken
        self.candidacy.attach(self.mailbox.append, self.run_here)
        session.listeners.append(self.standing.on_session_state)

    @property
    def running(self) -> bool:
        """Started and not stopping: a candidate that must end up in the queue."""
        return self.stop_done is None and self.standing.failure is None

    def run_here(self, message: Message) -> None:
        if self.busy or self.mailbox:
            self.mailbox.append(message)
        else:
            self._handle(message)

    def run_one(self) -> None:
        self._handle(self.mailbox.popleft())

    def _handle(self, message: Message) -> None:
        self.busy = True
        try:
            self.candidacy.handle(message)
        finally:
            self.busy = False
        done = self.stop_done
        if done is not None and done.done() and self.standing.lifecycle is Lifecycle.STARTED:
            # What Election.stop() does once the Stop step answered.
            if self.standing.on_session_state in self.session.listeners:
                self.session.listeners.remove(self.standing.on_session_state)
            self.standing.revoke("stopped")
            self.standing.enter_closed()

    def stop(self) -> None:
        if self.standing.enter_closing():
            self.stop_done = Future()
            self.mailbox.append(Stop(self.stop_done))


Action = Callable[[], None]


class CandidacyModel(RuleBasedStateMachine):
    """The candidacies and the simulated ensemble; rules are what may happen next."""

    watches: type[Watches] = Watches
    #: Whether a new session may be CONNECTED while a candidate has not yet handled the
    #: old one's LOST. That interleaving found a liveness bug (a step queued before the LOST
    #: joined with the new session, the LOST then forgot that node, which stayed first and
    #: blocked the election), fixed in Candidacy._joined_anew; kept as a regression test:
    #: test_a_step_queued_before_lost_that_runs_on_the_new_session.
    late_lost = True

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.timers = ModelTimers(self.clock)
        self.server = Server()
        self.sessions: list[ModelSession] = []
        self.slots: list[ModelSession] = []  # the session of each candidate slot
        self.current: list[Actor | None] = []  # the latest candidate of each slot
        self.actors: list[Actor] = []  # every candidate ever started (stopped ones too)
        self.revoke_on_suspend = True
        self._steady = True  # no step failed: the teardown's check is meaningful

    @initialize(
        slots=st.integers(3, 5),
        shared=st.booleans(),
        near_wrap=st.booleans(),
        revoke_on_suspend=st.booleans(),
        queued=st.integers(0, 5),
    )
    def setup(
        self, slots: int, shared: bool, near_wrap: bool, revoke_on_suspend: bool, queued: int
    ) -> None:
        """The ensemble and the sessions; ``queued`` candidates already in a settled queue,
        so that the steps go to disturbing it rather than to building it."""
        self.server = Server(counter_start=_NEAR_WRAP if near_wrap else 0)
        self.revoke_on_suspend = revoke_on_suspend
        for slot in range(slots):
            if shared and slot == 1:  # two candidates on one session
                self.slots.append(self.sessions[0])
                continue
            session = ModelSession(self.server, self.timers)
            self.sessions.append(session)
            self.slots.append(session)
        self.current = [None] * slots
        for slot in range(min(queued, slots)):
            self.start(slot, batched=False)
        self._settle(reconnect=False)

    # -- the world ------------------------------------------------------------------------------

    @rule(slot=st.integers(0, 4), batched=st.booleans())
    def start(self, slot: int, batched: bool) -> None:
        slot %= len(self.slots)
        actor = self.current[slot]
        if actor is not None and actor.running:
            return
        actor = Actor(
            self.slots[slot],
            f"c{len(self.actors)}",
            self.clock,
            revoke_on_suspend=self.revoke_on_suspend,
            watches=self.watches,
        )
        self.current[slot] = actor
        self.actors.append(actor)
        if batched and actor.session.join_slots.acquire(blocking=False):
            actor.mailbox.append(Start(None, batched=True))  # start(wait=False)
        else:
            actor.mailbox.append(Start(Future()))

    @rule(pick=st.integers(0, 4))
    def resign(self, pick: int) -> None:
        leaders = [a for a in self.actors if a.standing.leadership is not None and a.running]
        if leaders:
            leaders[pick % len(leaders)].run_here(Resign(Future()))

    @rule(slot=st.integers(0, 4))
    def stop(self, slot: int) -> None:
        actor = self.current[slot % len(self.current)]
        if actor is not None:
            actor.stop()

    @rule(session=st.integers(0, 4), landed=st.integers(0, 2))
    def disconnect(self, session: int, landed: int) -> None:
        self.sessions[session % len(self.sessions)].disconnect(landed)

    @rule(session=st.integers(0, 4), landed=st.integers(0, 2))
    def expire(self, session: int, landed: int) -> None:
        self.sessions[session % len(self.sessions)].expire(landed)

    @rule(session=st.integers(0, 4))
    def lease_runs_out(self, session: int) -> None:
        self.sessions[session % len(self.sessions)].lease_runs_out()

    @rule(session=st.integers(0, 4))
    def reconnect(self, session: int) -> None:
        self._reconnect(self.sessions[session % len(self.sessions)])

    def _reconnect(self, session: ModelSession) -> None:
        if session.state is ConnectionState.LOST and not self.late_lost:
            lost = SessionChanged(ConnectionState.LOST)
            if any(a.session is session and lost in a.mailbox for a in self.actors):
                return  # see ``late_lost``
        session.reconnect()

    @rule()
    def delete_path(self) -> None:
        self.server.delete_path()

    @rule(kind=st.sampled_from(["candidate_like", "other", "forged_marker"]), pick=st.integers())
    def foreign_node(self, kind: str, pick: int) -> None:
        """Persistent children no candidate made: named like a candidate, named like
        nothing, or named as the leader marker of a live candidate (owned by nobody)."""
        server = self.server
        if PATH not in server.nodes:
            return
        if kind == "candidate_like":
            server.create(f"{PATH}/{new_node_prefix()}", b"", 0, sequential=True)
        elif kind == "other":
            server.create(f"{PATH}/config-", b"", 0, sequential=True)
        else:
            names = server.candidate_order()[1:]  # the first's marker would say the truth
            marker = leader_marker(names[pick % len(names)]) if names else None
            if marker is not None and f"{PATH}/{marker}" not in server.nodes:
                server.create(f"{PATH}/{marker}", b"", 0)

    @rule(seconds=st.sampled_from([0.005, 0.02, 0.1, 1.0]))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.timers.fire_due()

    # -- the system making progress ---------------------------------------------------------------

    @rule(pick=st.integers(0, 30), count=st.integers(1, 4))
    def progress(self, pick: int, count: int) -> None:
        """A few steps of whichever may happen: a server processing a request, a delivery,
        an actor's message."""
        for _ in range(count):
            actions = self._ready()
            if not actions:
                return
            actions[pick % len(actions)]()

    @rule(session=st.integers(0, 4), queue=st.sampled_from(["events", "completions"]))
    def deliver(self, session: int, queue: str) -> None:
        chosen = self.sessions[session % len(self.sessions)]
        if queue in chosen.deliverable():
            chosen.deliver(queue)

    @rule(session=st.integers(0, 4))
    def process(self, session: int) -> None:
        self.sessions[session % len(self.sessions)].process_one()

    @rule(pick=st.integers(0, 10))
    def run_message(self, pick: int) -> None:
        waiting = [a for a in self.actors if a.mailbox]
        if waiting:
            waiting[pick % len(waiting)].run_one()

    @rule()
    def settle(self) -> None:
        """Everything runs to quiescence (no reconnect): a stable queue to disturb next."""
        self._settle(reconnect=False)

    def _ready(self) -> list[Action]:
        actions: list[Action] = []
        for session in self.sessions:
            if session.outbound:
                actions.append(partial(session.flush, session.outbound[0]))
            actions += [partial(session.deliver, queue) for queue in session.deliverable()]
        actions += [a.run_one for a in self.actors if a.mailbox]
        return actions

    def _settle(self, *, reconnect: bool) -> None:
        for _ in range(_SETTLE_LIMIT):
            if reconnect:
                for session in self.sessions:
                    self._reconnect(session)
            actions = self._ready()
            if actions:
                actions[0]()
                self.no_two_leaders_and_the_leader_is_first()  # after every step here too
                continue
            due = self.timers.next_due()
            if due is None:
                return
            self.clock.advance(max(0.0, due - self.clock()))
            self.timers.fire_due()
        raise AssertionError(f"no quiescence after {_SETTLE_LIMIT} actions: a livelock")

    # -- the invariants -------------------------------------------------------------------------

    def believers(self) -> list[tuple[Actor, str]]:
        """Candidates that believe they lead, and their leadership's node."""
        return [
            (actor, lead.node_path)
            for actor in self.actors
            if (lead := actor.standing.leadership) is not None
        ]

    @invariant()
    def no_two_leaders_and_the_leader_is_first(self) -> None:
        self._steady = False
        alive = [(a.name, node) for a, node in self.believers() if node in self.server.nodes]
        # (1) Two believers: at least one node deleted.
        assert len(alive) <= 1, f"two leaders whose nodes both exist: {alive}"
        # (2) A believer whose node exists owns the first node.
        order = self.server.candidate_order()
        for name, node in alive:
            first = f"{PATH}/{order[0]}" if order else None
            assert node == first, f"{name} leads with {node}, not first: {order}"
        self._steady = True

    def teardown(self) -> None:
        if not self._steady or not self.slots:
            return  # a step failed: that is the report
        self._steady = False
        self._settle(reconnect=True)
        order = self.server.candidate_order()
        running = [actor for actor in self.actors if actor.running]
        for actor in running:
            node = actor.candidacy.node
            assert node is not None and f"{PATH}/{node}" in self.server.nodes, (
                f"{actor.name} is stuck without a node ({actor.candidacy.phase}): {order}"
            )
        believers = self.believers()
        if order:
            assert len(believers) == 1, f"not exactly one leader at rest: {believers} {order}"
            assert believers[0][1] == f"{PATH}/{order[0]}", f"{believers} lead; {order}"
            self._election_is_traced(*believers[0])
        self._steady = True

    def _election_is_traced(self, actor: Actor, node: str) -> None:
        """(4) ZooKeeper keeps when the leader was elected (what ``zkelect status`` shows):
        its node was first when created (its ctime), or its marker exists, owned by its
        session (the marker's ctime). A persistent node forged under the marker's name
        keeps the real one from being made; status then shows the join time, untrusted."""
        if node in self.server.first_at_creation:
            return
        marker = leader_marker(node.rsplit("/", 1)[1])
        assert marker is not None
        found = self.server.nodes.get(f"{PATH}/{marker}")
        assert found is not None, f"{actor.name} waited, then led with {node}: no marker"
        assert found.stat.ephemeral_owner in (actor.session.session_id, 0), found.stat


CandidacyModel.TestCase.settings = SETTINGS
TestCandidacyModel = CandidacyModel.TestCase
if "ZKELECT_MODEL_EXAMPLES" in os.environ:  # a long exploration: not bound by pytest-timeout
    TestCandidacyModel.pytestmark = [pytest.mark.timeout(0)]  # type: ignore[attr-defined]


# -- the model can fail: broken candidacies are caught ------------------------------------------


class _AlwaysAheadFirst(Watches):
    """Broken on purpose: every predecessor's deletion notice elects (no check it was first)."""

    def on_predecessor(self, name: str, first: bool) -> bool:
        return super().on_predecessor(name, True)


class _TrustsAnyMarker(Watches):
    """Broken on purpose: a leader marker counts whoever owns it (a forged one too)."""

    def marker_seen(self, generation: int, owner: int, czxid: int) -> None:
        super().marker_seen(generation, self._owner, czxid)


def test_the_model_finds_a_broken_rule() -> None:
    """A middle candidate leaving must not elect its successor: hypothesis finds the
    counterexample when every deletion notice elects (seconds; no shrinking)."""
    machine = type("BrokenModel", (CandidacyModel,), {"watches": _AlwaysAheadFirst})
    quick = settings(
        SETTINGS,
        max_examples=2000,
        phases=[HypothesisPhase.generate],  # the first counterexample is enough
        derandomize=True,  # the same search every run: no flaky duration
        database=None,
        print_blob=False,
    )
    with pytest.raises(AssertionError, match=r"two leaders|not first"):
        run_state_machine_as_test(machine, settings=quick)


@pytest.mark.parametrize("watches", [Watches, _TrustsAnyMarker])
def test_a_forged_leader_marker_does_not_elect(watches: type[Watches]) -> None:
    """A persistent node named as a middle candidate's leader marker (owned by nobody) must
    not make its successor lead on that candidate's deletion. Scripted: hypothesis rarely
    composes the forgery, the successor's marker watch and the middle one's stop (a few
    thousand examples), so this case is driven by hand through the same model."""
    machine = type("Model", (CandidacyModel,), {"watches": watches})()
    machine.setup(slots=3, shared=False, near_wrap=False, revoke_on_suspend=True, queued=3)
    middle = machine.server.candidate_order()[1]
    machine.foreign_node(kind="forged_marker", pick=0)  # the middle one's marker
    machine.settle()  # its successor is told the marker exists (owned by nobody)
    (leaving,) = [a for a in machine.actors if a.candidacy.node == middle]
    leaving.stop()
    if watches is Watches:
        machine.settle()
        machine.teardown()
    else:
        with pytest.raises(AssertionError, match="two leaders"):
            machine.settle()


def test_the_counter_wraps_as_zookeepers_signed_32_bit_integer() -> None:
    server = Server(counter_start=2**31 - 1)
    session = ModelSession(server, ModelTimers(ManualClock()))
    first, _ = session.create_candidate(f"{PATH}/{new_node_prefix()}", b"")
    second, _ = session.create_candidate(f"{PATH}/{new_node_prefix()}", b"")

    assert first.endswith("latch-2147483647")
    assert second.endswith("latch--2147483648")  # %010d of the wrapped counter
    assert wrap32(2**31) == -(2**31)
    server.delete(first)  # a delete counts too
    third, _ = session.create_candidate(f"{PATH}/{new_node_prefix()}", b"")
    assert third.endswith("latch--2147483646")
    assert server.candidate_order()[-1] == third.rsplit("/", 1)[1]  # serial order, not string

    server.delete_path()
    again, _ = session.create_candidate(f"{PATH}/{new_node_prefix()}", b"")
    assert again.endswith("latch-0000000000")  # a re-created parent counts from 0


def test_notifications_and_answers_wait_for_delivery_in_order() -> None:
    server = Server()
    leader = ModelSession(server, ModelTimers(ManualClock()))
    watcher = ModelSession(server, ModelTimers(ManualClock()))
    node, _ = leader.create_candidate(f"{PATH}/{new_node_prefix()}", b"")
    told: list[str] = []
    watcher.watching_get(node, lambda event: told.append(event.value))
    pending = watcher.send_listing(PATH)
    pending.when_done(lambda: told.append("listed"))

    leader.delete(node)
    assert told == [] and watcher.deliverable() == ["events"]
    assert pending.result()[0] == []  # processed after the delete: the answer shows it
    assert watcher.deliverable() == ["events", "completions"]
    watcher.deliver("completions")  # kazoo's two callback threads: not ordered together
    watcher.deliver("events")
    assert told == ["listed", "deleted"]
    with pytest.raises(KeyError):
        watcher.data_watchers[node]  # one-shot


def test_a_step_queued_before_lost_that_runs_on_the_new_session() -> None:
    machine = CandidacyModel()
    machine.late_lost = True
    machine.setup(slots=3, shared=False, near_wrap=False, revoke_on_suspend=True, queued=0)
    machine.expire(session=0, landed=0)  # SUSPENDED, and the servers end the session
    machine.start(slot=0, batched=False)  # Start queued while away
    machine.reconnect(session=0)  # LOST: SessionChanged(LOST) queued behind the Start
    machine.reconnect(session=0)  # a new session, CONNECTED
    machine.run_message(pick=0)  # Start: joins with the new session, leads
    machine.no_two_leaders_and_the_leader_is_first()
    machine.teardown()  # the LOST forgets that node; the rejoin waits behind it for ever
