#!/usr/bin/env python3
"""What TLS costs: session establishment and handover, TLS against plaintext.

One local 3-member ensemble (LocalEnsemble, tickTime 200 ms, loopback) serves both a
plaintext clientPort and a TLS secureClientPort (ZooKeeper's Netty server; a throwaway CA
and certificates made with ``cryptography``; client verification and hostname checking on,
as zkelect does by default). Both transports are measured in the same run, interleaved, so
load from elsewhere on the machine weighs on both alike; the ratio is what to read.

* connect: from building a KazooClient to its session being established (``start_client``:
  TCP, the TLS handshake if any, ZooKeeper's ConnectRequest), ``--connects`` times each;
* handover: N (``--candidates``, 10) Elections, each on its own session; per round the
  leader calls ``resign()`` and we time until the successor's ``on_elected`` starts;
  ``--rounds`` rounds each, alternating transports between rounds.

Run: ``python bench/tls.py [--rounds 40] [--connects 40]``; ``--smoke`` for a tiny run.
Results: bench/results/tls.json (``--output`` to change).
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

from zkelect import Election, ElectionConfig, TlsOptions, kazoo_options
from zkelect._zookeeper.connect import start_client
from zkelect.testing.certs import make_test_pki
from zkelect.testing.ensemble import LocalEnsemble, ServerTls

RESULTS = Path(__file__).resolve().parent / "results" / "tls.json"
CONFIG = ElectionConfig(session_timeout=10.0, connect_timeout=30.0)
STEP_TIMEOUT = 30.0


def connect_once(hosts: str, options: dict[str, Any]) -> float:
    started = time.perf_counter()
    client = KazooClient(hosts=hosts, timeout=10.0, **options)
    start_client(client, STEP_TIMEOUT, hosts)
    elapsed = time.perf_counter() - started
    client.stop()
    client.close()
    return elapsed


class Handovers:
    """N candidates on one path and transport; ``one()`` times one resign -> elected."""

    def __init__(self, hosts: str, path: str, n: int, tls: TlsOptions | None) -> None:
        self.elected: queue.SimpleQueue[tuple[int, float]] = queue.SimpleQueue()
        self.elections = [
            Election(
                hosts,
                path,
                candidate_id=f"c{i}",
                config=CONFIG,
                tls=tls,
                on_elected=lambda lead, i=i: self.elected.put((i, time.perf_counter())),
            )
            for i in range(n)
        ]
        for election in self.elections:
            election.start()
        self.leader, _ = self.elected.get(timeout=STEP_TIMEOUT)

    def one(self) -> float:
        started = time.perf_counter()
        if not self.elections[self.leader].resign():
            raise RuntimeError(f"candidate {self.leader} was not leading")
        while True:
            index, at = self.elected.get(timeout=STEP_TIMEOUT)
            if index != self.leader:
                self.leader = index
                return at - started

    def stop(self) -> None:
        for election in self.elections:
            election.stop()


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 3),
        "min_ms": round(ordered[0] * 1000, 3),
        "samples": len(ordered),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--connects", type=int, default=40)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="5 rounds, 5 connects")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds = args.connects = 5
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="zkelect-bench-tls-") as tmp:
        pki = make_test_pki(tmp, server_names=("localhost", "127.0.0.1"))
        tls = TlsOptions(ca_file=pki.ca_file)
        server_tls = ServerTls(pki.server_cert, pki.server_key, pki.ca_file)
        with LocalEnsemble(3, tls=server_tls) as ens:
            transports = {
                "plaintext": (ens.hosts, None),
                "tls": (ens.secure_hosts, tls),
            }
            connects: dict[str, list[float]] = {name: [] for name in transports}
            for _ in range(args.connects):
                for name, (hosts, options) in transports.items():
                    kw = kazoo_options(tls=options) if options is not None else {}
                    connects[name].append(connect_once(hosts, kw))
            runs = {
                name: Handovers(hosts, f"/bench/tls/{name}", args.candidates, options)
                for name, (hosts, options) in transports.items()
            }
            handovers: dict[str, list[float]] = {name: [] for name in transports}
            try:
                for _ in range(args.rounds):
                    for name, run in runs.items():
                        handovers[name].append(run.one())
                        time.sleep(0.05)  # the resigned candidate re-joins at the back
            finally:
                for run in runs.values():
                    run.stop()
    result = {
        "benchmark": "tls",
        "candidates": args.candidates,
        "connect": {name: summary(s) for name, s in connects.items()},
        "handover": {name: summary(s) for name, s in handovers.items()},
    }
    for kind in ("connect", "handover"):
        plain, secure = result[kind]["plaintext"], result[kind]["tls"]  # type: ignore[index]
        ratio = secure["median_ms"] / plain["median_ms"]
        result[f"{kind}_ratio"] = round(ratio, 2)
        print(
            f"{kind:8}  plaintext median {plain['median_ms']:8.2f} ms   "
            f"tls median {secure['median_ms']:8.2f} ms   tls/plaintext {ratio:.2f}x   "
            f"({plain['samples']} samples each)"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
