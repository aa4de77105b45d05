"""The observability assets the repository ships, checked without docker.

* the alerting rules: `promtool check rules`, `promtool test rules` on their unit tests, and a
  firing and a not-firing test case for every alert;
* the Grafana dashboard: valid JSON, every panel titled and bound to the data source variable,
  every query valid PromQL over the metrics zkelect exports (and every such metric shown);
* the docker compose stack: it parses, every file it mounts or builds from exists, Prometheus
  scrapes the services and ports the commands listen on and loads the rules file the stack
  mounts (the packaged one: zkelect/ops/assets/ is the only copy), Grafana is provisioned
  from the mounted directories and dashboard, and `promtool check config` accepts
  prometheus.yml.

Docker cannot run on the development machines, so the compose stack is validated structurally.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from kazoo.client import KazooClient
from prometheus_client import CollectorRegistry, generate_latest

from zkelect.config import ElectionConfig
from zkelect.metrics import PrometheusRecorder
from zkelect.ops.exporter import ElectionExporter

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
PROMETHEUS_CONFIG = COMPOSE_DIR / "prometheus" / "prometheus.yml"
# The packaged assets (`zkelect assets DIR` writes them out; the compose stack mounts them).
ASSETS_DIR = REPO / "zkelect" / "ops" / "assets"
RULES = ASSETS_DIR / "zkelect.rules.yml"
RULE_TESTS = ASSETS_DIR / "zkelect.rules.test.yml"
DASHBOARD = ASSETS_DIR / "zkelect.json"
GRAFANA_DATASOURCES = COMPOSE_DIR / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
GRAFANA_DASHBOARDS = COMPOSE_DIR / "grafana" / "provisioning" / "dashboards" / "zkelect.yml"
ALERTS_DOC = REPO / "docs" / "alerts.md"

# The metric names zkelect exports (docs/observability.md; checked against the code below).
# Candidate processes:
CANDIDATE_METRICS = frozenset(
    {
        "zkelect_is_leader",
        "zkelect_leader_epoch",
        "zkelect_leadership_transitions_total",
        "zkelect_election_duration_seconds",
        "zkelect_candidates",
        "zkelect_sequence_wrapped",
        "zkelect_session_state",
        "zkelect_lease_remaining_seconds",
        "zkelect_fenced_writes_total",
        "zkelect_build_info",
        "zkelect_session_transitions_total",
        "zkelect_switchovers_total",
        "zkelect_switchover_drain_seconds",
    }
)
# ``zkelect run`` (PrometheusRecorder(supervisor=True)) adds its command's:
SUPERVISOR_METRICS = frozenset(
    {
        "zkelect_child_up",
        "zkelect_child_starts_total",
        "zkelect_child_exits_total",
        "zkelect_child_last_exit_timestamp_seconds",
    }
)
# The read-only exporter:
EXPORTER_METRICS = frozenset(
    {
        "zkelect_observer_connected",
        "zkelect_observed_has_leader",
        "zkelect_observed_leader",
        "zkelect_observed_leader_epoch",
        "zkelect_observed_candidates",
        "zkelect_observed_sequence_wrapped",
        "zkelect_observed_leader_changes_total",
    }
)
KNOWN_METRICS = CANDIDATE_METRICS | SUPERVISOR_METRICS | EXPORTER_METRICS
HISTOGRAMS = frozenset({"zkelect_election_duration_seconds", "zkelect_switchover_drain_seconds"})

CANDIDATE_COMMAND = "run"  # zkelect run PATH ... -- CMD: a candidate with its HTTP endpoints
EXPORTER_COMMAND = "exporter"


# ------------------------------------------------------------------------------------ helpers


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found on PATH: install Debian's `prometheus` package "
            "(apt-get install prometheus), which ships promtool"
        )
    return path


def run_promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def metric_names(promql: str) -> set[str]:
    """The zkelect metric names a query mentions, histogram series folded into their family."""
    names = set()
    for name in re.findall(r"\bzkelect_\w+", promql):
        for suffix in ("_bucket", "_sum", "_count"):
            base = name.removesuffix(suffix)
            if base != name and base in HISTOGRAMS:
                name = base
                break
        names.add(name)
    return names


def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels", []))


def dashboard() -> dict[str, Any]:
    with DASHBOARD.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def query_panels() -> list[dict[str, Any]]:
    return [p for p in walk_panels(dashboard()["panels"]) if p.get("type") != "row"]


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query target of every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in query_panels()
        for target in panel.get("targets", [])
    ]


GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "${election}": ".*",
    "$election": ".*",
}


def as_prometheus_sees_it(promql: str) -> str:
    """The query with Grafana's variables replaced the way Grafana would."""
    for variable, value in GRAFANA_VARIABLES.items():
        promql = promql.replace(variable, value)
    return promql


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return data


def services() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose()["services"]
    return result


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def zkelect_command(command: list[str]) -> str | None:
    """`zkelect COMMAND ...` -> COMMAND."""
    if len(command) >= 2 and command[0] == "zkelect":
        return command[1]
    return None


def zkelect_args(command: list[str]) -> list[str]:
    """The words zkelect parses: those before `--` (after it comes `zkelect run`'s CMD)."""
    return command[: command.index("--")] if "--" in command else command


def option(command: list[str], name: str) -> str:
    command = zkelect_args(command)
    assert name in command, f"{name} missing from {command}"
    index = command.index(name)
    assert index + 1 < len(command), f"{name} has no value in {command}"
    return command[index + 1]


def listen_option(command: list[str], name: str) -> str:
    """The port (``name="port"``) or bind address a candidate or exporter listens on."""
    run = zkelect_command(command) == "run"
    return option(command, f"--http-{name}" if run else f"--{name}")


def election_paths(command: list[str]) -> set[str]:
    """The election paths of `zkelect run PATH` or `zkelect exporter --path P ...`."""
    args = zkelect_args(command)
    if zkelect_command(command) == "run":
        return {args[2]}
    return {args[i + 1] for i, word in enumerate(args) if word == "--path"}


def services_running(zkelect: str) -> dict[str, list[str]]:
    return {
        name: command_of(service)
        for name, service in services().items()
        if zkelect_command(command_of(service)) == zkelect
    }


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, PurePosixPath]]:
    """(host path, container path) of each bind mount given with a relative host path."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") != "bind":
                continue
            source, target = volume["source"], volume["target"]
        else:
            source, target = volume.split(":")[:2]
        assert source.startswith("."), f"bind mount {source!r} must be relative to compose/"
        mounts.append(((COMPOSE_DIR / source).resolve(), PurePosixPath(target)))
    return mounts


def host_path(service_name: str, container_path: str) -> Path | None:
    """Where a path inside the container comes from on the host, through the bind mounts."""
    wanted = PurePosixPath(container_path)
    for source, target in bind_mounts(services()[service_name]):
        if wanted == target or target in wanted.parents:
            return source.joinpath(*wanted.relative_to(target).parts)
    return None


def published_ports(service: dict[str, Any]) -> list[str]:
    return [str(port) for port in service.get("ports", [])]


def scrape_targets() -> dict[str, list[str]]:
    config = load_yaml(PROMETHEUS_CONFIG)
    return {
        job["job_name"]: [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        for job in config["scrape_configs"]
    }


def zookeeper_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in services().items()
        if str(service.get("image", "")).startswith("zookeeper:")
    }


def zookeeper_setting(service: dict[str, Any], key: str) -> str | None:
    """A zoo.cfg key set through the official image's ZOO_CFG_EXTRA."""
    extra = str(service.get("environment", {}).get("ZOO_CFG_EXTRA", ""))
    settings = dict(entry.split("=", 1) for entry in extra.split())
    return settings.get(key)


def exported_families(registry: CollectorRegistry) -> set[str]:
    """Metric family names a registry exposes, as PromQL sees them (counters with _total)."""
    families = set()
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if kind == "counter" and not name.endswith("_total"):
                name += "_total"
            families.add(name)
    return families


# ------------------------------------------------------------------------------------ metrics


def test_the_metric_names_here_are_the_ones_zkelect_exports() -> None:
    # The candidates' recorder: series exist from the start of an election.
    registry = CollectorRegistry()
    PrometheusRecorder(registry).election_started("/elections/demo")
    assert exported_families(registry) == CANDIDATE_METRICS
    # zkelect run's recorder: exits by code appear with the first exit.
    registry = CollectorRegistry()
    recorder = PrometheusRecorder(registry, supervisor=True)
    recorder.election_started("/elections/demo")
    recorder.child_started()
    recorder.child_exited(0, at=1.0)
    assert exported_families(registry) == CANDIDATE_METRICS | SUPERVISOR_METRICS
    # The exporter, on a client that is never started: it registers its families anyway.
    registry = CollectorRegistry()
    exporter = ElectionExporter(KazooClient(hosts="127.0.0.1:9"), ["/e"], registry=registry)
    exporter.start(timeout=0.1)
    try:
        assert exported_families(registry) == EXPORTER_METRICS
    finally:
        exporter.stop()


# ------------------------------------------------------------------------------------ rules


def promtool_check_metrics(registry: CollectorRegistry) -> None:
    page = generate_latest(registry)
    result = subprocess.run(
        [promtool(), "check", "metrics"], input=page, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0 and not result.stdout + result.stderr, (
        result.stdout + result.stderr
    ).decode()


def test_promtool_check_metrics_accepts_every_family() -> None:
    registry = CollectorRegistry()
    recorder = PrometheusRecorder(registry, supervisor=True)
    recorder.election_started("/elections/demo")
    promtool_check_metrics(registry)  # at the start: the exits family has no series yet
    for state in ("connected", "suspended", "connected"):
        recorder.session_state("/elections/demo", state)
    recorder.leadership_acquired("/elections/demo", 0x100000002, 0.01)
    recorder.child_started()
    recorder.child_exited(143, at=1_700_000_000.0)
    promtool_check_metrics(registry)


def test_promtool_check_rules_accepts_the_rules() -> None:
    result = run_promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    result = run_promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_not_firing_test_case() -> None:
    tests = load_yaml(RULE_TESTS)
    assert tests["rule_files"] == [RULES.name]
    firing: dict[str, list[dict[str, str]]] = {}
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            expected = check.get("exp_alerts") or []
            if expected:
                firing.setdefault(check["alertname"], []).extend(
                    alert["exp_labels"] for alert in expected
                )
            else:
                quiet.add(check["alertname"])
    for rule in alert_rules():
        name, labels = rule["alert"], rule.get("labels", {})
        assert name in quiet, f"{name}: no test case where it must not fire"
        # An alert defined by several rules (ZkElectNoLeader from the candidates and from the
        # exporter) needs a firing case for each, told apart by their labels.
        assert any(
            all(fired.get(key) == value for key, value in labels.items())
            for fired in firing.get(name, [])
        ), f"{name} {labels}: no test case where it fires"


def test_every_alert_is_actionable_and_documented() -> None:
    doc = ALERTS_DOC.read_text(encoding="utf-8")
    headings = set(re.findall(r"^#+\s+`?(\w+)`?\s*$", doc, flags=re.MULTILINE))
    for rule in alert_rules():
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in {"critical", "warning", "info"}, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary"), f"{name}: no summary"
        assert "docs/alerts.md" in annotations.get("description", ""), f"{name}: no runbook"
        assert name in headings, f"{name}: no section in docs/alerts.md"


def test_rules_query_only_metrics_zkelect_exports() -> None:
    for rule in rules():
        unknown = metric_names(rule["expr"]) - KNOWN_METRICS
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: unknown {unknown}"


def test_split_brain_and_no_leader_rules_are_per_election() -> None:
    by_name: dict[str, list[str]] = {}
    for rule in alert_rules():
        by_name.setdefault(rule["alert"], []).append(" ".join(rule["expr"].split()))
    # Aggregate-mode series (election="*") sum over many elections: not one election.
    assert (
        'sum by (election) (zkelect_is_leader{election!="*"}) > 1' in by_name["ZkElectSplitBrain"]
    )
    no_leader = by_name["ZkElectNoLeader"]
    assert any("zkelect_is_leader" in expr for expr in no_leader)
    assert any("zkelect_observed_has_leader" in expr for expr in no_leader)
    for name in (
        "ZkElectCandidatesGone",
        "ZkElectFlapping",
        "ZkElectSessionSuspended",
        "ZkElectSessionLost",
        "ZkElectFencedWritesRejected",
        "ZkElectExporterDisconnected",
        "ZkElectSequenceWrapped",
        "ZkElectChildCrashLooping",
    ):
        assert name in by_name


# ------------------------------------------------------------------------------------ dashboard


def test_dashboard_parses_with_datasource_and_election_variables() -> None:
    data = dashboard()
    assert data["uid"] and data["title"]
    assert data["schemaVersion"] >= 38
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    election = variables["election"]
    assert election["datasource"]["uid"] == "${datasource}"
    query = election["query"]
    query = query["query"] if isinstance(query, dict) else query
    match = re.fullmatch(r"label_values\((.+),\s*election\)", query)
    assert match, query
    assert metric_names(match.group(1)) and metric_names(match.group(1)) <= KNOWN_METRICS


def test_every_panel_has_a_title_and_the_datasource_variable() -> None:
    panels = list(walk_panels(dashboard()["panels"]))
    assert panels
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel.get("title"), f"panel {panel['id']} has no title"
        if panel.get("type") == "row":
            continue
        assert panel.get("datasource", {}).get("uid") == "${datasource}", panel["title"]
        assert panel.get("targets"), f"{panel['title']}: no query"
        for target in panel["targets"]:
            assert target.get("datasource", {}).get("uid") == "${datasource}", panel["title"]
            assert target.get("expr"), f"{panel['title']}: a target without a query"


def test_dashboard_queries_only_metrics_zkelect_exports_and_shows_them_all() -> None:
    seen: set[str] = set()
    for title, expr in dashboard_queries():
        names = metric_names(expr)
        assert names, f"{title}: {expr!r} queries no zkelect metric"
        assert names <= KNOWN_METRICS, f"{title}: unknown metrics {names - KNOWN_METRICS}"
        seen |= names
    assert seen == KNOWN_METRICS, f"not on the dashboard: {sorted(KNOWN_METRICS - seen)}"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses every expression of a rules file: wrap each query in a recording rule.
    recorded = []
    for index, (title, expr) in enumerate(dashboard_queries()):
        promql = as_prometheus_sees_it(expr)
        assert "$" not in promql, f"{title}: unknown Grafana variable in {expr!r}"
        recorded.append({"record": f"dashboard_query_{index}", "expr": promql})
    rules_file = tmp_path / "dashboard.rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    result = run_promtool("check", "rules", rules_file)
    assert result.returncode == 0, result.stdout + result.stderr


def panel_query(title: str) -> str:
    (expr,) = [expr for panel_title, expr in dashboard_queries() if panel_title == title]
    return as_prometheus_sees_it(expr)


def evaluate(tmp_path: Path, expr: str, series: dict[str, str], expected: dict[str, float]) -> None:
    """Assert, with promtool's rule unit tests, that ``expr`` over ``series`` (15 s samples)
    gives exactly ``expected`` (labels -> value) one minute in."""
    case = {
        "rule_files": [],
        "tests": [
            {
                "interval": "15s",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": "1m",
                        "exp_samples": [
                            {"labels": labels, "value": value} for labels, value in expected.items()
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "query.test.yml"
    path.write_text(yaml.safe_dump(case))
    result = run_promtool("test", "rules", path.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_leader_panels_show_who_leads(tmp_path: Path) -> None:
    series = {
        'zkelect_is_leader{job="z",instance="c1:8080",election="/e"}': "1x4",
        'zkelect_is_leader{job="z",instance="c2:8080",election="/e"}': "0x4",
        # A process in aggregate mode leading 3 elections is not 3 leaders of one election.
        'zkelect_is_leader{job="z",instance="c3:8080",election="*"}': "3x4",
    }
    evaluate(
        tmp_path,
        panel_query("Leader per election over time"),
        series,
        {
            '{election="/e",instance="c1:8080"}': 1,
            '{election="/e",instance="c2:8080"}': 0,
            '{election="*",instance="c3:8080"}': 3,
        },
    )
    evaluate(tmp_path, panel_query("Leaders per election"), series, {'{election="/e"}': 1})


def test_dashboard_session_state_panel_encodes_the_current_state(tmp_path: Path) -> None:
    series = {}
    for instance, current in (("c1", "connected"), ("c2", "suspended"), ("c3", "lost")):
        for state in ("connected", "suspended", "lost"):
            labels = f'job="z",instance="{instance}:8080",election="/e",state="{state}"'
            series[f"zkelect_session_state{{{labels}}}"] = "1x4" if state == current else "0x4"
    # The panel's value mappings: 0 connected, 1 suspended, 2 lost.
    (panel,) = [p for p in query_panels() if p["title"] == "Session state"]
    (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
    texts = {int(value): option["text"] for value, option in mapping["options"].items()}
    assert texts == {0: "connected", 1: "suspended", 2: "lost"}
    evaluate(
        tmp_path,
        panel_query("Session state"),
        series,
        {
            '{election="/e",instance="c1:8080"}': 0,
            '{election="/e",instance="c2:8080"}': 1,
            '{election="/e",instance="c3:8080"}': 2,
        },
    )


# ------------------------------------------------------------------------------------ compose


def test_compose_file_parses_and_defines_the_stack() -> None:
    names = set(services())
    assert len(zookeeper_services()) == 3
    assert len(services_running(CANDIDATE_COMMAND)) == 3
    assert len(services_running(EXPORTER_COMMAND)) == 1
    assert {"prometheus", "grafana"} <= names


def test_every_mounted_or_built_file_exists() -> None:
    for name, service in services().items():
        for source, _target in bind_mounts(service):
            assert source.exists(), f"{name}: mounts {source}, which does not exist"
        build = service.get("build")
        if build is None:
            continue
        build = {"context": build} if isinstance(build, str) else build
        context = (COMPOSE_DIR / build["context"]).resolve()
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: no {dockerfile}"
        for line in dockerfile.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if words[:1] != ["COPY"] or any(w.startswith("--from") for w in words):
                continue
            for source in (w for w in words[1:-1] if not w.startswith("--")):
                assert (context / source).exists(), f"{dockerfile}: COPY {source}: missing"


def test_published_ports_listen_on_loopback_only() -> None:
    for name, service in services().items():
        for port in published_ports(service):
            assert port.startswith("127.0.0.1:"), f"{name}: {port} is not bound to loopback"


def test_zookeeper_members_form_one_ensemble() -> None:
    members = zookeeper_services()
    ids = {name: str(service["environment"]["ZOO_MY_ID"]) for name, service in members.items()}
    assert sorted(ids.values()) == ["1", "2", "3"]
    for name, service in members.items():
        environment = service["environment"]
        servers = set(str(environment["ZOO_SERVERS"]).split())
        assert servers == {f"server.{ids[m]}={m}:2888:3888;2181" for m in members}, name
        whitelist = str(environment["ZOO_4LW_COMMANDS_WHITELIST"]).split(",")
        assert "srvr" in whitelist and "mntr" in whitelist, name
    for name, command in {
        **services_running(CANDIDATE_COMMAND),
        **services_running(EXPORTER_COMMAND),
    }.items():
        hosts = option(command, "--hosts").split(",")
        assert sorted(hosts) == sorted(f"{m}:2181" for m in members), name
        assert set(services()[name].get("depends_on", {})) >= set(members), name


def test_candidates_are_distinct_and_share_one_election() -> None:
    candidates = services_running(CANDIDATE_COMMAND)
    ids = [option(command, "--id") for command in candidates.values()]
    assert len(set(ids)) == len(ids)
    paths = set().union(*(election_paths(command) for command in candidates.values()))
    assert len(paths) == 1
    (exporter,) = services_running(EXPORTER_COMMAND).values()
    assert paths <= election_paths(exporter)


def test_candidates_supervise_a_command_and_stop_within_the_grace_period() -> None:
    for name, command in services_running(CANDIDATE_COMMAND).items():
        assert "--" in command and command[-1], f"{name}: no command after '--'"
        service = services()[name]
        # docker stop's SIGKILL must not come before zkelect run stopped its command and left.
        grace = float(option(command, "--grace"))
        stop = str(service.get("stop_grace_period", "10s"))
        leaving = ElectionConfig().request_timeout  # deleting its node: at most this
        assert stop.endswith("s") and float(stop[:-1]) > grace + leaving, name
        assert service.get("init") is True, f"{name}: no init to reap what the command leaves"


def test_scrape_targets_are_services_and_the_ports_they_listen_on() -> None:
    listening: dict[str, str] = {}
    for zkelect in (CANDIDATE_COMMAND, EXPORTER_COMMAND):
        for name, command in services_running(zkelect).items():
            listening[name] = listen_option(command, "port")
            # Reachable from Prometheus's container, not only from its own loopback.
            assert listen_option(command, "bind") == "0.0.0.0", name
    for name, service in zookeeper_services().items():
        port = zookeeper_setting(service, "metricsProvider.httpPort")
        assert port, f"{name}: no metricsProvider.httpPort in ZOO_CFG_EXTRA"
        listening[name] = port

    targets = scrape_targets()
    scraped = {}
    for job, job_targets in targets.items():
        for target in job_targets:
            host, _, port = target.rpartition(":")
            assert host in services(), f"job {job}: {target} names no compose service"
            assert listening.get(host) == port, f"job {job}: {host} listens on {listening[host]}"
            scraped[host] = job
    assert set(scraped) == set(listening), "every candidate, exporter and member is scraped"
    assert {scraped[name] for name in services_running(CANDIDATE_COMMAND)} == {"zkelect-candidates"}
    assert {scraped[name] for name in services_running(EXPORTER_COMMAND)} == {"zkelect-exporter"}


def test_prometheus_loads_the_mounted_config_and_rules() -> None:
    assert host_path("prometheus", "/etc/prometheus/prometheus.yml") == PROMETHEUS_CONFIG
    rule_files = load_yaml(PROMETHEUS_CONFIG)["rule_files"]
    assert rule_files
    mounted = [host_path("prometheus", path) for path in rule_files]
    assert mounted == [RULES], f"rule_files {rule_files} map to {mounted}, not {RULES}"


def test_promtool_check_config_accepts_prometheus_yml(tmp_path: Path) -> None:
    # rule_files are container paths: check a copy whose paths point at the repository's files.
    config = load_yaml(PROMETHEUS_CONFIG)
    config["rule_files"] = [str(host_path("prometheus", path)) for path in config["rule_files"]]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config))
    result = run_promtool("check", "config", copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout, result.stdout


def test_grafana_is_provisioned_from_the_mounted_directories() -> None:
    grafana = "grafana"
    datasources_dir = host_path(grafana, "/etc/grafana/provisioning/datasources")
    dashboards_dir = host_path(grafana, "/etc/grafana/provisioning/dashboards")
    assert datasources_dir == GRAFANA_DATASOURCES.parent
    assert dashboards_dir == GRAFANA_DASHBOARDS.parent

    (datasource,) = load_yaml(GRAFANA_DATASOURCES)["datasources"]
    assert datasource["type"] == "prometheus"
    match = re.fullmatch(r"http://([\w-]+):(\d+)/?", datasource["url"])
    assert match, datasource["url"]
    assert match.group(1) in services(), datasource["url"]
    assert any(p.endswith(f":{match.group(2)}") for p in published_ports(services()["prometheus"]))

    providers = load_yaml(GRAFANA_DASHBOARDS)["providers"]
    for provider in providers:
        # The packaged dashboard is mounted as a file inside the provider's directory.
        source = host_path(grafana, f"{provider['options']['path']}/{DASHBOARD.name}")
        assert source is not None and source.samefile(DASHBOARD), provider
    environment = services()[grafana].get("environment", {})
    home = environment.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert host_path(grafana, home) == DASHBOARD


def test_compose_commands_use_options_the_commands_accept() -> None:
    commands = {**services_running(CANDIDATE_COMMAND), **services_running(EXPORTER_COMMAND)}
    dockerfile = (COMPOSE_DIR / "Dockerfile").read_text(encoding="utf-8")
    cmd = re.search(r"^CMD (\[.*?\])\s*$", dockerfile.replace("\\\n", ""), re.MULTILINE)
    assert cmd, "compose/Dockerfile has no exec-form CMD"
    commands["Dockerfile CMD"] = json.loads(cmd.group(1))
    help_text: dict[str, str] = {}
    for name, command in commands.items():
        zkelect = zkelect_command(command)
        assert zkelect, f"{name}: {command} is not `zkelect COMMAND ...`"
        if zkelect not in help_text:
            result = subprocess.run(
                [sys.executable, "-m", "zkelect.ops.cli.main", zkelect, "--help"],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, (
                f"zkelect {zkelect} --help: {result.stdout}{result.stderr}"
            )
            help_text[zkelect] = result.stdout
        for word in zkelect_args(command)[2:]:
            if word.startswith("--"):
                assert re.search(rf"{re.escape(word)}\b", help_text[zkelect]), (
                    f"{name}: zkelect {zkelect} does not accept {word}"
                )
