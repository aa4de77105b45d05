#!/usr/bin/env python3
"""Herd effect: how many candidates one leader change wakes, zkelect vs a naive recipe.

For N = 10, 100, 1000 candidates on one election path, per leader change (the leader leaves:
zkelect ``stop()``, naive: deletes its node) and per join (a candidate joins at the back):

* server side: watch notifications the servers sent (``mntr`` zk_sum_node_*_watch_count
  deltas, summed over the members);
* client side: candidates other than the one leaving/joining that *looked* at the election
  (zkelect: its metrics hook ``candidates_seen``, called once per look; naive: its watch
  callback), that were *notified* (a watch callback kazoo dispatched to them: every candidate
  client's ``handler.dispatch_callback`` is tapped; a callback is the candidate's whose node
  or predecessor's node it is about, on that candidate's session), and that were *woken*:
  looked or notified;
* ZooKeeper requests the change cost (``mntr`` zk_packets_received deltas over the members,
  minus this script's own four-letter words; the window is short, and the background rate
  at rest, pings and zkelect's lease heartbeats, is measured and reported beside it);
* at rest: data watches per candidate node (``wchp`` on every member: the sessions holding
  a watch on each path), those besides the node's owner (its ``ephemeralOwner``: the
  leader's own watch on its node is by design), and server watches per candidate
  (``zk_watch_count``, data and child watches, over N). Leader markers (children named
  ``zkelect-leader-...``) are not candidate nodes: reported apart.

The naive recipe is the textbook one that herds: every candidate creates an ephemeral
sequential node and watches the children list; on every change each re-reads the list and
leads if its node is first.

Sessions: up to 100 candidates have a session each; above that candidates share 100
sessions round-robin (as in the handover benchmark). ZooKeeper keeps one watch per (session,
path, kind), so with shared sessions the naive recipe's server-side notifications count
sessions, while its client side still wakes every candidate: both are reported.

Targets (issues 7 and 14): exactly 1 candidate woken per leader change, and at most one
watch per candidate node besides its owner's, at every N.
"""

from __future__ import annotations

import itertools
import logging
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    LEADER_MARKER_PREFIX,
    BenchError,
    Ensemble,
    Recorder,
    base_parser,
    candidate_names,
    default_output,
    ensemble_for,
    exit_on_sigterm,
    machine_info,
    started_clients,
    wait_children,
    write_result,
)
from kazoo.client import KazooClient

from zkelect import Election, ElectionConfig, Leadership, NoopRecorder, ZkElectError
from zkelect._election.nodes import election_order
from zkelect._election.switchover import REQUEST_NODE
from zkelect.testing import FIRED_WATCH_KEYS, parse_wchp

SESSION_TIMEOUT = 20.0  # long: fewer background pings in the request counts
MAX_SESSIONS = 100
CONFIG = ElectionConfig(session_timeout=SESSION_TIMEOUT)

log = logging.getLogger("bench.herd")

Notice = tuple[int, str, Any]  # (client index, the event's path, the watch callback)


def tap_watch_callbacks(clients: list[KazooClient], sink: list[Notice]) -> None:
    """Record every watch callback kazoo dispatches on ``clients`` (each has its own handler)."""
    if len({id(client.handler) for client in clients}) != len(clients):
        raise BenchError("the candidates' clients share a handler: notices cannot be told apart")
    for index, client in enumerate(clients):
        dispatch = client.handler.dispatch_callback

        def tapped(callback: Any, index: int = index, dispatch: Any = dispatch) -> Any:
            if callback.type == "watch":
                sink.append((index, callback.args[0].path, callback.func))
            return dispatch(callback)

        client.handler.dispatch_callback = tapped


# --------------------------------------------------------------------------- recipes


class CountingRecorder(NoopRecorder):
    """zkelect's metrics hook: ``candidates_seen`` is called once per look at the election."""

    def __init__(self) -> None:
        self.looks = 0

    def candidates_seen(self, election: str, count: int) -> None:
        self.looks += 1


class ZkelectRecipe:
    name = "zkelect"

    def __init__(self, clients: list[KazooClient], path: str, recorder: Recorder) -> None:
        self.clients = clients
        self.path = path
        self.recorder = recorder
        self.elections: dict[int, Election] = {}
        self.counters: dict[int, CountingRecorder] = {}
        self._owner_of: dict[str, int] = {}
        self._watcher_of: dict[str, int] = {}

    def _make(self, index: int) -> Election:
        counter = CountingRecorder()

        def on_elected(lead: Leadership) -> None:
            self.recorder.record(index)

        election = Election(
            self.clients[index % len(self.clients)],
            self.path,
            candidate_id=f"cand-{index:04d}",
            config=CONFIG,
            metrics=counter,
            on_elected=on_elected,
        )
        self.elections[index] = election
        self.counters[index] = counter
        return election

    def setup(self, n: int) -> None:
        elections = [self._make(i) for i in range(n)]
        with ThreadPoolExecutor(16) as pool:  # joining is not measured here: in parallel
            list(pool.map(lambda e: e.start(), elections))

    def join(self, index: int) -> None:
        self._make(index).start()

    def leave(self, index: int) -> None:
        self.elections.pop(index).stop()
        self.counters.pop(index)

    def woken(self) -> dict[int, int]:
        return {i: c.looks for i, c in list(self.counters.items())}

    def snapshot(self) -> None:
        """Note every candidate's node and its predecessor's, to tell whose a notice is."""
        nodes = {e.node: i for i, e in list(self.elections.items()) if e.node}
        names = candidate_names(self.clients[0].get_children(self.path))
        order = [f"{self.path}/{node.name}" for node in election_order(names)]
        self._owner_of = nodes
        self._watcher_of = {
            ahead: nodes[behind] for ahead, behind in itertools.pairwise(order) if behind in nodes
        }

    def identify(self, client: int, path: str, func: Any) -> Any:
        """The candidate a notice on ``client`` about ``path`` went to: the one whose node or
        predecessor's node it is about, else the session's only candidate; anything else
        (a shared session, another path) counts as a notice to an unnamed candidate."""
        sessions = len(self.clients)
        for index in (self._owner_of.get(path), self._watcher_of.get(path)):
            if index is not None and index % sessions == client:
                return index
        on_session = [i for i in list(self.elections) if i % sessions == client]
        return on_session[0] if len(on_session) == 1 else ("unnamed", client, path)

    def stop(self) -> None:
        for election in list(self.elections.values()):
            with suppress(ZkElectError):
                election.stop(timeout=5)
        self.elections.clear()


class NaiveCandidate:
    """The herding recipe: watch the children list, re-read it on every change."""

    def __init__(
        self, client: KazooClient, path: str, index: int, on_lead: Callable[[int], None]
    ) -> None:
        self.client = client
        self.path = path
        self.index = index
        self.on_lead = on_lead
        self.woken = 0
        self.active = True
        self.leading = False
        self.node = ""

    def create(self) -> Any:
        return self.client.create_async(
            f"{self.path}/n-", b"", ephemeral=True, sequence=True, makepath=True
        )

    def arm(self, created: str) -> None:
        self.node = created.rsplit("/", 1)[1]
        self._look()

    def _look(self) -> None:
        self.client.get_children_async(self.path, watch=self._fired).rawlink(self._got)

    def _fired(self, event: Any) -> None:
        if self.active:
            self.woken += 1
            self._look()

    def _got(self, result: Any) -> None:
        if not self.active:
            return
        try:
            names = result.get_nowait()
        except Exception:
            return
        if names and min(names) == self.node and not self.leading:  # same prefix: sorts by seq
            self.leading = True
            self.on_lead(self.index)

    def leave(self) -> None:
        self.active = False
        self.client.delete(f"{self.path}/{self.node}")


class NaiveRecipe:
    name = "naive"

    def __init__(self, clients: list[KazooClient], path: str, recorder: Recorder) -> None:
        self.clients = clients
        self.path = path
        self.recorder = recorder
        self.candidates: dict[int, NaiveCandidate] = {}

    def _make(self, index: int) -> NaiveCandidate:
        candidate = NaiveCandidate(
            self.clients[index % len(self.clients)], self.path, index, self.recorder.record
        )
        self.candidates[index] = candidate
        return candidate

    def setup(self, n: int) -> None:
        # Create every node first, then arm the watches: joining one by one would herd N^2/2
        # times before the benchmark even starts.
        candidates = [self._make(i) for i in range(n)]
        self.clients[0].ensure_path(self.path)
        pending = [c.create() for c in candidates]
        created = [p.get(timeout=30) for p in pending]
        for candidate, node in zip(candidates, created, strict=True):
            candidate.arm(node)

    def join(self, index: int) -> None:
        candidate = self._make(index)
        candidate.arm(candidate.create().get(timeout=30))

    def leave(self, index: int) -> None:
        self.candidates.pop(index).leave()

    def woken(self) -> dict[int, int]:
        return {i: c.woken for i, c in list(self.candidates.items())}

    def snapshot(self) -> None:
        pass

    def identify(self, client: int, path: str, func: Any) -> Any:
        """Each candidate registered its own callback: the bound method says whose it is."""
        owner = getattr(func, "__self__", None)
        return owner.index if isinstance(owner, NaiveCandidate) else ("unnamed", client, path)

    def stop(self) -> None:
        for candidate in self.candidates.values():
            candidate.active = False
        self.candidates.clear()  # the sessions' close deletes the nodes


# --------------------------------------------------------------------------- measuring


class Meter:
    """Server-side counters around an action, net of our own four-letter words."""

    def __init__(self, ensemble: Ensemble) -> None:
        self.ensemble = ensemble
        self.background_per_s = 0.0

    def measure_background(self, seconds: float) -> None:
        first = self.ensemble.mntr_all()
        calls = self.ensemble.fourlw_calls
        began = time.monotonic()
        time.sleep(seconds)
        last = self.ensemble.mntr_all()
        took = time.monotonic() - began
        own = self.ensemble.fourlw_calls - calls
        extra = last["zk_packets_received"] - first["zk_packets_received"] - own
        self.background_per_s = max(0.0, extra / took)

    def settle(self, woken: Callable[[], dict[int, int]], timeout: float = 20.0) -> int:
        """Wait until watches and wake-ups stop changing (3 polls 50 ms apart); the watch count."""
        deadline = time.monotonic() + timeout
        last: tuple[int, int] | None = None
        same = 0
        while time.monotonic() < deadline:
            now = (self.ensemble.mntr_sum("zk_watch_count"), sum(woken().values()))
            same = same + 1 if now == last else 0
            if same >= 2:
                return now[0]
            last = now
            time.sleep(0.05)
        raise BenchError("the election did not settle (watches or wake-ups kept changing)")

    def around(
        self,
        action: Callable[[], None],
        done: Callable[[], None],
        recipe: Any,
        notices: list[Notice],
        exclude: int,
    ) -> dict[str, Any]:
        woken = recipe.woken
        recipe.snapshot()
        before = self.ensemble.mntr_all()
        calls = self.ensemble.fourlw_calls
        woken_before = woken()
        heard = len(notices)
        began = time.monotonic()
        action()
        done()
        self.settle(woken)
        after = self.ensemble.mntr_all()
        took = time.monotonic() - began
        own = self.ensemble.fourlw_calls - calls
        woken_after = woken()
        fired = {kind: after[key] - before[key] for kind, key in FIRED_WATCH_KEYS.items()}
        raw = after["zk_packets_received"] - before["zk_packets_received"] - own
        looked = {
            i
            for i, count in woken_after.items()
            if i != exclude and i in woken_before and count > woken_before[i]
        }
        notified = {recipe.identify(*notice) for notice in notices[heard:]} - {exclude}
        return {
            "server_notifications": sum(fired.values()),
            "fired": fired,
            "candidates_looked": len(looked),
            "candidates_notified": len(notified),
            "candidates_woken": len(looked | notified),
            "requests": raw,
            "window_s": round(took, 3),
        }


def watches_at_rest(
    ensemble: Ensemble, observer: KazooClient, path: str, leader_node: str
) -> dict[str, Any]:
    """Data watches per candidate node from ``wchp`` on every member (sessions per path),
    and those besides the node's owner (its ephemeralOwner); leader markers apart."""
    sessions: dict[str, list[int]] = {}
    for i in range(len(ensemble.members)):
        for watched, ids in parse_wchp(ensemble.four_letter(i, "wchp")).items():
            if watched.startswith(path + "/"):
                sessions.setdefault(watched, []).extend(ids)
    markers = {p: ids for p, ids in sessions.items() if _is_marker(p)}
    # The switchover request's path is no candidate node: the leader and the next in line
    # watch it (R14), reported apart.
    request = sessions.pop(f"{path}/{REQUEST_NODE}", [])
    ours = {p: ids for p, ids in sessions.items() if p not in markers}
    foreign = {}
    for node, ids in ours.items():
        stat = observer.exists(node)
        owner = stat.ephemeralOwner if stat is not None else None
        foreign[node] = sum(1 for session in ids if session != owner)
    leader_path = f"{path}/{leader_node}"
    followers = [len(ids) for p, ids in ours.items() if p != leader_path]
    return {
        "candidate_nodes_watched": len(ours),
        "max_watches_per_candidate_node": max((len(i) for i in ours.values()), default=0),
        "max_foreign_watches_per_candidate_node": max(foreign.values(), default=0),
        "watches_on_leader_node": len(ours.get(leader_path, [])),
        "foreign_watches_on_leader_node": foreign.get(leader_path, 0),
        "max_watches_per_follower_node": max(followers, default=0),
        "data_watches_on_candidate_nodes": sum(len(i) for i in ours.values()),
        "data_watches_on_leader_markers": sum(len(i) for i in markers.values()),
        "data_watches_on_switchover_request": len(request),
    }


def _is_marker(node_path: str) -> bool:
    return node_path.rsplit("/", 1)[1].startswith(LEADER_MARKER_PREFIX)


def leader_node(client: KazooClient, path: str) -> str:
    """The first node in election order (zkelect's order; the naive recipe's nodes sort alike)."""
    names = candidate_names(client.get_children(path))
    if not names:
        raise BenchError(f"{path} has no candidates")
    order = election_order(names)
    return order[0].name if order else min(names)  # naive nodes: n-<sequence>


def run_recipe(
    ensemble: Ensemble, recipe_cls: Any, n: int, changes: int, background_s: float
) -> dict[str, Any]:
    sessions = min(n, MAX_SESSIONS)
    path = f"/bench/herd/{recipe_cls.name}-n{n}-{int(time.time() * 1000) % 10**8}"
    recorder = Recorder()
    meter = Meter(ensemble)
    with started_clients([ensemble.hosts] * (sessions + 1), SESSION_TIMEOUT) as clients:
        observer, candidate_clients = clients[0], clients[1:]
        recipe = recipe_cls(candidate_clients, path, recorder)
        notices: list[Notice] = []
        tap_watch_callbacks(candidate_clients, notices)
        try:
            watches_before = ensemble.mntr_sum("zk_watch_count")
            recipe.setup(n)
            recorder.wait_beyond(0, f"first {recipe.name} leader")
            wait_children(observer, path, n)
            watches = meter.settle(recipe.woken)
            at_rest = {
                **watches_at_rest(ensemble, observer, path, leader_node(observer, path)),
                "server_watches": watches - watches_before,
                "server_watches_per_candidate": round((watches - watches_before) / n, 3),
                "client_watchers_per_candidate": 1,
            }
            meter.measure_background(background_s)
            leader_changes: list[dict[str, Any]] = []
            joins: list[dict[str, Any]] = []
            next_index = n
            for _ in range(changes):
                mark = recorder.count()
                leader, _ = recorder.events[-1]
                leader_changes.append(
                    meter.around(
                        lambda leader=leader: recipe.leave(leader),
                        lambda mark=mark: recorder.wait_beyond(mark, f"{recipe.name} successor"),
                        recipe,
                        notices,
                        exclude=leader,
                    )
                )
                joins.append(
                    meter.around(
                        lambda index=next_index: recipe.join(index),
                        lambda: wait_children(observer, path, n),
                        recipe,
                        notices,
                        exclude=next_index,
                    )
                )
                next_index += 1
        finally:
            recipe.stop()
    return {
        "recipe": recipe.name,
        "n": n,
        "sessions": sessions,
        "at_rest": at_rest,
        "background_requests_per_s": round(meter.background_per_s, 2),
        "leader_change": summarize(leader_changes),
        "join": summarize(joins),
        "leader_changes": leader_changes,
        "joins": joins,
    }


def summarize(events: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float:
        return float(statistics.median(e[key] for e in events))

    return {
        "server_notifications": med("server_notifications"),
        "candidates_looked": med("candidates_looked"),
        "candidates_notified": med("candidates_notified"),
        "candidates_woken": med("candidates_woken"),
        "candidates_woken_min": min(e["candidates_woken"] for e in events),
        "candidates_woken_max": max(e["candidates_woken"] for e in events),
        "requests": med("requests"),
        "count": len(events),
    }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("Herd effect: candidates woken per leader change, zkelect vs naive.")
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--changes", type=int, default=5, help="leader changes per N (<= 100)")
    parser.add_argument("--changes-large", type=int, default=3, help="leader changes, N > 100")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.changes, args.changes_large = "5", 1, 1
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    output = args.output or default_output("herd", args.smoke)
    background_s = 0.5 if args.smoke else 1.0
    exit_on_sigterm()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("kazoo").setLevel(logging.ERROR)
    began = time.perf_counter()
    rows: list[dict[str, Any]] = []
    try:
        with ensemble_for(args.hosts) as ensemble:
            machine = machine_info(ensemble)
            for n in sizes:
                changes = args.changes if n <= 100 else args.changes_large
                for recipe_cls in (ZkelectRecipe, NaiveRecipe):
                    print(f"N={n}: {recipe_cls.name} ...", flush=True)
                    rows.append(run_recipe(ensemble, recipe_cls, n, changes, background_s))
            print_table(rows)
            woken_met = {
                str(r["n"]): r["leader_change"]["candidates_woken_min"]
                == r["leader_change"]["candidates_woken_max"]
                == 1
                for r in rows
                if r["recipe"] == "zkelect"
            }
            watches_met = {
                str(r["n"]): r["at_rest"]["max_foreign_watches_per_candidate_node"] <= 1
                for r in rows
                if r["recipe"] == "zkelect"
            }
            for r in rows:
                if r["recipe"] != "zkelect":
                    continue
                n, rest = str(r["n"]), r["at_rest"]
                lc = r["leader_change"]
                print(
                    f"N={n}: zkelect wakes {lc['candidates_woken_min']:g}-"
                    f"{lc['candidates_woken_max']:g} candidate(s) per change (looked "
                    f"{lc['candidates_looked']:g}, notified {lc['candidates_notified']:g}; "
                    f"target exactly 1): {'target met' if woken_met[n] else 'target NOT met'}; "
                    f"watches per node besides its owner's: at most "
                    f"{rest['max_foreign_watches_per_candidate_node']} (leader's node: "
                    f"{rest['watches_on_leader_node']} in all; target <= 1): "
                    f"{'target met' if watches_met[n] else 'target NOT met'}"
                )
            write_result(
                output,
                benchmark="herd",
                description=(
                    "candidates woken per leader change and per join, watches per candidate "
                    "node; zkelect vs a naive children-watch recipe"
                ),
                ensemble=ensemble,
                machine=machine,
                params={
                    "sizes": sizes,
                    "changes": args.changes,
                    "changes_large": args.changes_large,
                    "max_sessions": MAX_SESSIONS,
                    "session_timeout_s": SESSION_TIMEOUT,
                    "background_window_s": background_s,
                    "smoke": bool(args.smoke),
                },
                results=rows,
                began=began,
                target={
                    "woken_per_change": 1,
                    "max_watches_per_node_besides_owner": 1,
                    "woken_met": woken_met,
                    "watches_met": watches_met,
                },
            )
    except KeyboardInterrupt:
        print("interrupted: clients and the ensemble were stopped", file=sys.stderr)
        return 130
    except (BenchError, ZkElectError, TimeoutError) as exc:
        print(f"herd benchmark failed: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    return 0


def print_table(rows: list[dict[str, Any]]) -> None:
    print()
    print(
        f"{'recipe':<9}{'N':>6}{'sess':>6}{'woken/chg':>11}{'looked':>8}{'notified':>10}"
        f"{'notif/chg':>11}{'req/chg':>9}{'woken/join':>12}{'req/join':>10}"
        f"{'max w/node':>12}{'besides owner':>15}{'watches/cand':>14}"
    )
    for r in rows:
        lc, jn, rest = r["leader_change"], r["join"], r["at_rest"]
        print(
            f"{r['recipe']:<9}{r['n']:>6}{r['sessions']:>6}{lc['candidates_woken']:>11g}"
            f"{lc['candidates_looked']:>8g}{lc['candidates_notified']:>10g}"
            f"{lc['server_notifications']:>11g}{lc['requests']:>9g}{jn['candidates_woken']:>12g}"
            f"{jn['requests']:>10g}{rest['max_watches_per_candidate_node']:>12}"
            f"{rest['max_foreign_watches_per_candidate_node']:>15}"
            f"{rest['server_watches_per_candidate']:>14}"
        )
    print()


if __name__ == "__main__":
    raise SystemExit(main())
