"""The chaos runner: real processes, real faults, a recorded history, then the checker.

    python -m chaos.run --minutes 3 --seed 7 --out chaos-report/run1 [--members 3|5]
        [--profile short|default|both] [--kinds kill-leader,silent-member]

Starts a local ZooKeeper ensemble, five candidate processes (chaos.candidate; each in its own
network namespace when we are root) that reach the members through per-candidate TCP
proxies, and an observer. The profile sets the servers' ticks and the candidates' timeouts
(chaos.cluster.PROFILES): ``short`` (the default: 200 ms ticks, 2 s sessions, many faults a
minute) or ``default`` (nothing tuned: ZooKeeper's 2000 ms ticks and session bounds, zkelect's
10 s sessions); ``both`` runs ``short`` then ``default``, each for half of ``--minutes``, in
``OUT/short`` and ``OUT/default``. Then it injects a seeded schedule of faults one
at a time (chaos.nemesis): fault, planned duration, heal, wait until the cluster has a unique
leader again (or the bound passes), a short gap. Every round of the schedule covers every
fault kind, and the first round always completes, so even a short run injects them all.

At the end it heals everything, takes the final sample while the candidates still run,
stops them (SIGTERM: each records its exit), dumps the store's audit, runs the checker and
writes the report. Exit status: 0 if no invariant was violated, 1 on a violation or a
harness failure, 2 on bad arguments. The seed is printed first: ``--seed`` replays the
same schedule (kinds, order, planned durations; "the leader" is whoever leads then).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import datetime
import json
import logging
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.cluster import PROFILES, Cluster, HarnessError, Profile
from chaos.events import EventLog
from chaos.nemesis import FAULT_KINDS, PARTITION_KINDS, Fault, Nemesis, schedule
from chaos.netns import NetLab, netns_available
from chaos.observer import Observer

__all__ = ["RunConfig", "Runner", "main"]

ELECTION_PATH = "/chaos/election"
CANDIDATES = 5


def _say(message: str) -> None:
    print(f"chaos: {message}", flush=True)


@dataclass(frozen=True)
class RunConfig:
    run_dir: Path
    seed: int
    duration_s: float
    members: int
    profile: Profile
    heal_bound_s: float
    use_netns: bool
    kinds: tuple[str, ...] = FAULT_KINDS  # the kinds asked for (--kinds), in schema order

    @property
    def session_timeout(self) -> float:
        return self.profile.effective_session_timeout


class Runner:
    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.run_dir = config.run_dir
        self.st = config.session_timeout
        self.kinds = [k for k in config.kinds if config.use_netns or k not in PARTITION_KINDS]
        self.skipped = [k for k in config.kinds if k not in self.kinds]
        self.faults: list[Fault] = []
        self.started_t = time.monotonic()
        self.ended_t: float | None = None
        self.harness_error: str | None = None

    # -- run.json ------------------------------------------------------------------------

    def _write_run_json(self) -> None:
        info = {
            "seed": self.config.seed,
            "duration_s": self.config.duration_s,
            "session_timeout_s": self.st,
            "profile": self.config.profile.name,
            "tick_ms": self.config.profile.tick_ms,
            "members": self.config.members,
            "candidates": CANDIDATES,
            "election_path": ELECTION_PATH,
            "store": "sqlite",
            "store_path": str(self.run_dir / "store.sqlite"),
            "netns": self.config.use_netns,
            "started_t": self.started_t,
            "ended_t": self.ended_t,
            "nemesis_kinds": self.kinds,
            "heal_bound_s": self.config.heal_bound_s,
            "skipped_kinds": self.skipped,
        }
        tmp = self.run_dir / "run.json.tmp"
        tmp.write_text(json.dumps(info, indent=1) + "\n")
        tmp.replace(self.run_dir / "run.json")

    # -- waiting for a unique leader ------------------------------------------------------

    def _unique_leader(self, cluster: Cluster, observer: Observer, after: float) -> bool:
        cluster.refresh()
        cluster.check_alive()
        sample = observer.fresh_leader(after)
        if sample is None or sample.epoch is None:
            return False
        believers = cluster.believers()
        return (
            len(believers) == 1
            and believers[0].belief == sample.epoch
            and not believers[0].paused
            and cluster.slot_by_id(sample.data) is believers[0]
        )

    def wait_unique_leader(
        self, cluster: Cluster, observer: Observer, after: float, bound: float
    ) -> float | None:
        """Seconds from ``after`` until one leader, seen by ZooKeeper and by itself alone;
        None if ``bound`` passes first."""
        while True:
            now = time.monotonic()
            if self._unique_leader(cluster, observer, after):
                return now - after
            if now - after > bound:
                return None
            time.sleep(0.1)

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> int:
        config = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._write_run_json()
        nemesis_log = EventLog(self.run_dir / "nemesis.jsonl")
        observer_log = EventLog(self.run_dir / "observer.jsonl")
        netlab = NetLab(CANDIDATES) if config.use_netns else None
        cluster: Cluster | None = None
        observer: Observer | None = None
        nemesis: Nemesis | None = None
        try:
            if netlab is not None:
                netlab.setup()
                if netlab.removed_stale:
                    _say(f"removed stale namespaces: {', '.join(netlab.removed_stale)}")
            cluster = Cluster(
                self.run_dir,
                members=config.members,
                candidates=CANDIDATES,
                profile=config.profile,
                election_path=ELECTION_PATH,
                nemesis_log=nemesis_log,
                netlab=netlab,
            )
            cluster.start_servers()
            observer = Observer(cluster.ensemble.hosts, ELECTION_PATH, observer_log, self.st)
            observer.start()
            cluster.start_candidates()
            if self.wait_unique_leader(cluster, observer, time.monotonic(), 60.0) is None:
                raise HarnessError("no unique leader within 60 s of starting the candidates")
            _say(
                f"profile {config.profile.name}: {config.members} ZooKeeper members "
                f"({config.profile.tick_ms} ms ticks), {CANDIDATES} candidates with "
                f"{self.st:g} s sessions"
                f"{' in network namespaces' if netlab else ' on loopback (no namespaces)'}; "
                f"faults for {config.duration_s:g} s"
            )
            nemesis = Nemesis(
                cluster,
                observer,
                nemesis_log,
                config.seed,
                netlab=netlab,
            )
            self._inject(cluster, observer, nemesis)
            nemesis.heal_all()
            self._finish(cluster, observer)
        except HarnessError as exc:
            self.harness_error = str(exc)
        except Exception as exc:
            self.harness_error = f"{type(exc).__name__}: {exc}"
            import traceback

            traceback.print_exc()
        finally:
            if nemesis is not None:
                nemesis.close()
            if observer is not None:
                observer.stop()
            if cluster is not None:
                cluster.close()
            if netlab is not None:
                netlab.teardown()
            if self.ended_t is None:
                self.ended_t = time.monotonic()
            self._write_run_json()
            nemesis_log.close()
            observer_log.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.dump_store(self.run_dir / "store_accepted.jsonl")
        if self.harness_error is not None:
            _say(f"HARNESS ERROR (the run proves nothing): {self.harness_error}")
            _say(f"seed {config.seed}; history in {self.run_dir}")
            return 1
        return self._check()

    def _inject(self, cluster: Cluster, observer: Observer, nemesis: Nemesis) -> None:
        kinds = schedule(self.kinds, random.Random(f"{self.config.seed}/schedule"))
        gaps = random.Random(f"{self.config.seed}/gaps")
        deadline = self.started_t + self.config.duration_s
        bound = self.st + self.config.heal_bound_s
        while len(self.faults) < len(self.kinds) or time.monotonic() < deadline:
            kind = next(kinds)
            fault = nemesis.run(kind)
            fault.recovery_s = self.wait_unique_leader(cluster, observer, fault.ended_t, bound)
            self.faults.append(fault)
            recovery = "NO LEADER" if fault.recovery_s is None else f"{fault.recovery_s:.1f}s"
            notes = f" ({'; '.join(fault.notes)})" if fault.notes else ""
            _say(
                f"[{time.monotonic() - self.started_t:6.1f}s] #{fault.id:<3} {kind:<21} "
                f"{','.join(fault.targets):<14} planned {fault.planned_s:4.1f}s "
                f"recovered {recovery}{notes}"
            )
            pause_until = time.monotonic() + gaps.uniform(0.5, 1.5)
            while time.monotonic() < pause_until:
                cluster.check_alive()
                time.sleep(0.1)

    def _finish(self, cluster: Cluster, observer: Observer) -> None:
        """Settle, take the final sample with the candidates still running, stop them."""
        after = time.monotonic()
        bound = self.st + self.config.heal_bound_s + 10.0

        def settled() -> bool:
            live = cluster.live_slots()
            sample = observer.fresh_leader(after)
            return (
                self._unique_leader(cluster, observer, after)
                and sample is not None
                and sample.nodes == len(live)
                and all(s.session_id is not None for s in live)
            )

        while not settled() and time.monotonic() - after < bound:
            time.sleep(0.1)
        live = cluster.live_slots()
        observer.final(len(live), [s.session_id for s in live if s.session_id is not None])
        cluster.stop_candidates()
        self.ended_t = time.monotonic()

    # -- the verdict --------------------------------------------------------------------------

    def _check(self) -> int:
        from chaos.checker import check
        from chaos.report import write_report

        result = check(self.run_dir)
        write_report(self.run_dir, result)
        self._print_summary(result)
        return 0 if not result.violations else 1

    def _print_summary(self, result: Any) -> None:
        summary: dict[str, Any] = dict(result.summary)
        by_kind = collections.Counter(f.kind for f in self.faults)
        recoveries = [f.recovery_s for f in self.faults if f.recovery_s is not None]
        lines = [
            f"profile {self.config.profile.name}: {self.st:g} s sessions, "
            f"{self.config.profile.tick_ms} ms ticks",
            f"seed {self.config.seed} (replay: {self.replay_command()})",
            f"faults injected: {len(self.faults)} in "
            f"{(self.ended_t or time.monotonic()) - self.started_t:.0f} s",
        ]
        lines += [f"  {kind:<22} {by_kind.get(kind, 0)}" for kind in self.kinds]
        if self.skipped:
            lines.append(f"  skipped (no network namespaces): {', '.join(self.skipped)}")
        if recoveries:
            lines.append(
                f"recovery after heal: max {max(recoveries):.1f} s, "
                f"median {sorted(recoveries)[len(recoveries) // 2]:.1f} s; "
                f"no leader within the bound: {sum(f.recovery_s is None for f in self.faults)}"
            )
        writes = summary.get("writes", {})
        heal = summary.get("heal", {})
        dual = summary.get("dual_belief", {})
        silent = summary.get("silent_member", {})
        lines += [
            f"elections (distinct epochs): {summary.get('elections')}; elected events: "
            f"{summary.get('elected_events')}",
            f"writes: {writes.get('accepted')} accepted, {writes.get('rejected')} rejected, "
            f"{writes.get('error')} errors; stale writes rejected: "
            f"{summary.get('stale_writes_rejected')}, stale writes accepted: "
            f"{summary.get('stale_writes_accepted')}",
            f"unique leader after heal (checker): max {heal.get('max_s')} s, p50 "
            f"{heal.get('p50_s')} s, p90 {heal.get('p90_s')} s (bound {heal.get('bound_s')} s)",
            f"max dual belief: {summary.get('max_dual_belief_s')} s over "
            f"{dual.get('overlaps')} overlaps ({dual.get('unfenced')} unfenced, "
            f"{dual.get('without_pause')} without a pause)",
            f"silent member (I6): {silent.get('faults')} faults, {silent.get('judged')} "
            f"candidates judged, {silent.get('ok')} back in time, {silent.get('violations')} "
            f"not; back after max {silent.get('max_s')} s, p50 {silent.get('p50_s')} s "
            f"(bound {silent.get('bound_s')} s); not judged: "
            + (", ".join(f"{n} {why}" for why, n in silent.get("not_judged", {}).items() if n)
               or "none"),
        ]
        per_invariant: dict[str, int] = summary.get("violations", {})
        lines.append(
            "invariants: "
            + ", ".join(
                f"{inv} {'ok' if count == 0 else f'VIOLATED x{count}'}"
                for inv, count in per_invariant.items()
            )
        )
        lines.append(f"violations: {len(result.violations)}")
        for violation in result.violations[:20]:
            lines.append(f"  {violation.invariant} {violation.message}")
        lines.append(f"report: {self.run_dir / 'report.html'} (and report.json)")
        for line in lines:
            _say(line)

    def replay_command(self) -> str:
        config = self.config
        kinds = "" if config.kinds == FAULT_KINDS else f" --kinds {','.join(config.kinds)}"
        return (
            f"python -m chaos.run --profile {config.profile.name} --seed {config.seed} "
            f"--minutes {config.duration_s / 60:g} --members {config.members}{kinds}"
        )


def _default_out() -> Path:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("chaos-report") / stamp


def _parse_kinds(parser: argparse.ArgumentParser, value: str | None) -> tuple[str, ...]:
    if value is None:
        return FAULT_KINDS
    asked = {kind.strip() for kind in value.split(",") if kind.strip()}
    unknown = sorted(asked - set(FAULT_KINDS))
    if unknown or not asked:
        parser.error(f"--kinds: unknown {unknown or 'empty list'}; known: {', '.join(FAULT_KINDS)}")
    return tuple(kind for kind in FAULT_KINDS if kind in asked)


def _profile(parser: argparse.ArgumentParser, name: str, session_timeout: float | None) -> Profile:
    """The named profile, with its session timeout overridden if asked; checked against the
    servers' bounds (ZooKeeper would silently negotiate another timeout, and every bound the
    checker applies would be wrong)."""
    profile = PROFILES[name]
    if session_timeout is not None:
        profile = dataclasses.replace(profile, session_timeout=session_timeout)
    low = (profile.min_session_timeout_ms or 2 * profile.tick_ms) / 1000.0
    high = (profile.max_session_timeout_ms or 20 * profile.tick_ms) / 1000.0
    if not low <= profile.effective_session_timeout <= high:
        parser.error(
            f"--session-timeout {profile.effective_session_timeout:g} is outside the servers' "
            f"bounds for profile {name} ({low:g}..{high:g} s)"
        )
    return profile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.run", description="Run the chaos harness and check its history."
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=20.0,
        help="fault period (default 20); with --profile both, split evenly between the two",
    )
    parser.add_argument("--seed", type=int, default=None, help="schedule seed (default random)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run directory (new or empty); with --profile both, OUT/short and OUT/default",
    )
    parser.add_argument("--members", type=int, choices=(3, 5), default=3)
    parser.add_argument(
        "--profile",
        choices=(*PROFILES, "both"),
        default="short",
        help="short: 200 ms ticks, 2 s sessions (default); default: ZooKeeper's and "
        "zkelect's defaults (2000 ms ticks, 10 s sessions); both: short, then default",
    )
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=None,
        help="override the profile's session timeout (one profile only)",
    )
    parser.add_argument(
        "--heal-bound",
        type=float,
        default=None,
        help="seconds allowed after session timeout for a unique leader after a heal "
        "(default: session timeout + 5)",
    )
    parser.add_argument(
        "--kinds",
        default=None,
        help="comma-separated fault kinds to schedule, for a focused run (default: all)",
    )
    parser.add_argument(
        "--no-netns", action="store_true", help="proxies on loopback; skip the partition kinds"
    )
    args = parser.parse_args(argv)
    # kazoo narrates every dropped connection; during a chaos run that is the point, not news.
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    if args.minutes <= 0 or (args.session_timeout is not None and args.session_timeout <= 0):
        parser.error("--minutes and --session-timeout must be > 0")
    names = list(PROFILES) if args.profile == "both" else [args.profile]
    if len(names) > 1 and args.session_timeout is not None:
        parser.error("--session-timeout needs one --profile, not both")
    profiles = [_profile(parser, name, args.session_timeout) for name in names]
    kinds = _parse_kinds(parser, args.kinds)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    out: Path = args.out if args.out is not None else _default_out()
    if out.exists() and any(out.iterdir()):
        parser.error(f"--out {out} is not empty: give a new directory for this run")
    _say(f"seed {seed}")
    use_netns = not args.no_netns and netns_available()
    if not use_netns:
        reason = "--no-netns" if args.no_netns else "not root or no 'ip netns'"
        _say(f"network namespaces unavailable ({reason}): partition faults are skipped")
    configs = [
        RunConfig(
            run_dir=(out if len(profiles) == 1 else out / profile.name).resolve(),
            seed=seed,
            duration_s=args.minutes * 60.0 / len(profiles),
            members=args.members,
            profile=profile,
            heal_bound_s=(
                args.heal_bound
                if args.heal_bound is not None
                else profile.effective_session_timeout + 5.0
            ),
            use_netns=use_netns,
            kinds=kinds,
        )
        for profile in profiles
    ]

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the runner's cleanup

    signal.signal(signal.SIGTERM, terminate)
    verdicts: list[tuple[str, int, Path]] = []
    for config in configs:
        _say(f"profile {config.profile.name}: run directory {config.run_dir}")
        verdicts.append((config.profile.name, Runner(config).run(), config.run_dir))
    if len(verdicts) > 1:
        for name, code, run_dir in verdicts:
            _say(f"profile {name}: {'PASS' if code == 0 else 'FAIL'} ({run_dir})")
    return max(code for _, code, _ in verdicts)


if __name__ == "__main__":
    sys.exit(main())
