"""The deployment material in deploy/, checked without systemd running or a cluster.

* deploy/systemd: the unit stops `zkelect run` the way it must be stopped (KillMode=mixed, a
  stop timeout above --grace plus leaving), restarts it, reads the example environment file,
  whose ZKELECT_* variables are `zkelect run` options; `systemd-analyze verify` accepts it;
* deploy/kubernetes: every manifest parses; the Deployment runs `zkelect run PATH -- CMD` with
  the pod's name as candidate id, its probes ask /livez and /readyz on the port zkelect
  listens on, its termination grace period exceeds --grace plus leaving; the Service and the
  PodMonitor select the pods and name a port they have; kustomization.yaml lists every file.
"""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from zkelect.config import ElectionConfig
from zkelect.ops.cli.main import app
from zkelect.ops.supervisor import DEFAULT_GRACE

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "deploy" / "systemd"
UNIT = SYSTEMD / "zkelect-run@.service"
ENV_EXAMPLE = SYSTEMD / "example.env"
KUBERNETES = REPO / "deploy" / "kubernetes"
#: Leaving the election after the command stopped takes at most the request timeout.
LEAVING = ElectionConfig().request_timeout


def run_options() -> dict[str, str | None]:
    """`zkelect run`'s long options -> the environment variable each one reads (or None)."""
    command = typer.main.get_command(app).commands["run"]
    options: dict[str, str | None] = {}
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        for opt in param.opts:
            if opt.startswith("--"):
                options[opt] = envvar if isinstance(envvar, str) else None
    return options


def check_zkelect_variables(variables: dict[str, str], where: str) -> None:
    """Every ZKELECT_* variable names a `zkelect run` option, the one it is read for."""
    options = run_options()
    for name in variables:
        if not name.startswith("ZKELECT_"):
            continue
        option = "--" + name.removeprefix("ZKELECT_").lower().replace("_", "-")
        assert option in options, f"{where}: {name}, but `zkelect run` has no {option}"
        declared = options[option]
        assert declared == name, f"{where}: {option} reads {declared}, not {name}"


def seconds(value: str) -> float:
    """A systemd time span as this unit writes it: '30s' or '30'."""
    return float(value.removesuffix("s"))


# ------------------------------------------------------------------------------------ systemd


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None, comment_prefixes=("#",))
    parser.optionxform = str
    parser.read(UNIT, encoding="utf-8")
    return parser


def env_file() -> dict[str, str]:
    variables = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            variables[name.strip()] = value
    return variables


def test_systemd_unit_stops_the_supervisor_first_and_waits_long_enough() -> None:
    service = unit()["Service"]
    # SIGTERM to zkelect run only (it stops its command's process group itself), SIGKILL to
    # whatever is left in the cgroup at the stop timeout.
    assert service["KillMode"] == "mixed"
    assert service.get("KillSignal", "SIGTERM") == "SIGTERM"
    grace = float(env_file().get("ZKELECT_GRACE", DEFAULT_GRACE))
    assert seconds(service["TimeoutStopSec"]) > grace + LEAVING
    assert service["Restart"] in {"always", "on-failure"}
    assert service["EnvironmentFile"] == "/etc/zkelect/%i.env"
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "zkelect" and argv[1] == "run", argv
    assert argv[2:] == ["${ELECTION_PATH}", "--", "$COMMAND"], argv
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_env_example_sets_run_options() -> None:
    variables = env_file()
    assert variables["ELECTION_PATH"].startswith("/")
    assert variables["COMMAND"].split()
    assert "ZKELECT_HOSTS" in variables
    check_zkelect_variables(variables, ENV_EXAMPLE.name)


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: the systemd package)")
    zkelect = shutil.which("zkelect") or str(REPO / ".venv" / "bin" / "zkelect")
    # An instance of the template, with paths and a user that exist on this machine.
    text = (
        UNIT.read_text(encoding="utf-8")
        .replace("/opt/zkelect/bin/zkelect", zkelect)
        .replace("/etc/zkelect/%i.env", str(ENV_EXAMPLE))
        .replace("User=zkelect", "User=root")
        .replace("Group=zkelect", "Group=root")
    )
    instance = tmp_path / "zkelect-run@cron.service"
    instance.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", str(instance)], capture_output=True, text=True, timeout=60, check=False
    )
    # verify warns about unknown keys on stderr without failing: no output at all is the bar.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


# ------------------------------------------------------------------------------------ kubernetes


def manifests() -> dict[str, list[dict[str, Any]]]:
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
        for path in sorted(KUBERNETES.glob("*.yaml"))
    }


def the(kind: str) -> dict[str, Any]:
    (found,) = [doc for docs in manifests().values() for doc in docs if doc["kind"] == kind]
    return found


def container() -> dict[str, Any]:
    (zkelect,) = the("Deployment")["spec"]["template"]["spec"]["containers"]
    return zkelect


def container_env() -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container()["env"]}


def test_every_manifest_parses_and_kustomization_lists_them() -> None:
    docs = manifests()
    kinds = {doc["kind"] for file_docs in docs.values() for doc in file_docs}
    assert {"Deployment", "Service", "PodMonitor", "Kustomization"} <= kinds
    for name, file_docs in docs.items():
        for doc in file_docs:
            assert doc.get("apiVersion") and doc.get("kind"), name
    listed = set(the("Kustomization")["resources"])
    assert listed == set(docs) - {"kustomization.yaml"}


def test_deployment_runs_zkelect_run_with_the_pod_name_as_id() -> None:
    zkelect = container()
    argv = [*zkelect["command"], *zkelect["args"]]
    assert argv[:2] == ["zkelect", "run"] and argv[2].startswith("/"), argv
    assert "--" in argv and argv[argv.index("--") + 1 :], "no command after '--'"
    flags = [word for word in argv[3 : argv.index("--")] if word.startswith("--")]
    assert set(flags) <= set(run_options()), flags
    env = container_env()
    assert env["ZKELECT_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["ZKELECT_HOSTS"]
    check_zkelect_variables(env, "deployment.yaml")


def test_probes_ask_livez_and_readyz_where_zkelect_listens() -> None:
    zkelect, env = container(), container_env()
    port = int(env["ZKELECT_HTTP_PORT"])
    assert env["ZKELECT_HTTP_BIND"] == "0.0.0.0"  # the kubelet probes the pod's address
    ports = {p["name"]: p["containerPort"] for p in zkelect["ports"]}
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        get = zkelect[probe]["httpGet"]
        assert get["path"] == path, probe
        assert ports.get(get["port"], get["port"]) == port, f"{probe} asks port {get['port']}"


def test_termination_grace_exceeds_the_commands_grace_plus_leaving() -> None:
    spec = the("Deployment")["spec"]
    grace = float(container_env().get("ZKELECT_GRACE", DEFAULT_GRACE))
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] > grace + LEAVING
    assert spec["replicas"] >= 2


def test_service_and_podmonitor_select_the_pods_and_their_port() -> None:
    pod_labels = the("Deployment")["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in container()["ports"]}
    service = the("Service")["spec"]
    assert service["clusterIP"] == "None"
    assert service["selector"].items() <= pod_labels.items()
    assert {p["targetPort"] for p in service["ports"]} <= port_names
    monitor = the("PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"
