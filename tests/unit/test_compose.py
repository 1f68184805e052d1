"""docker-compose.yml: valid Compose, scalable nodes, only flags the `shoal` CLI offers.

No Docker engine runs here, so the file is checked statically: against the Compose
Specification schema (check-jsonschema's builtin copy), by Debian's docker-compose 1.29
(`config -q` also resolves references and `${VAR:?}` guards), and by reading it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

# The process interface the compose file is written against (flag names without "--").
FLAGS = {
    "node": {"name", "data", "zone", "api-host", "api-port", "advertise-api", "serf-bind",
             "serf-rpc", "join", "capacity"},
    "gateway": {"host", "port", "serf-bind", "serf-rpc", "join", "workers"},
}
SECRETS = {"SHOAL_CLUSTER_SECRET", "SHOAL_GOSSIP_KEY", "SHOAL_RPC_TOKEN"}
GATEWAY_CREDENTIALS = {"SHOAL_ACCESS_KEY", "SHOAL_SECRET_KEY"}
REQUIRED = SECRETS | GATEWAY_CREDENTIALS


def env_name(flag: str) -> str:
    return "SHOAL_" + flag.upper().replace("-", "_")


def load() -> dict:
    return YAML(typ="safe").load(COMPOSE.read_text())


def services() -> dict[str, dict]:
    return load()["services"]


def shoal_services() -> dict[str, dict]:
    """Services running `shoal` (the image's entrypoint), keyed by name."""
    return {name: svc for name, svc in services().items() if svc["command"][0] in FLAGS}


def test_schema_valid() -> None:
    tool = Path(sys.executable).parent / "check-jsonschema"
    proc = subprocess.run(
        [str(tool), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _docker_compose(env_values: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose (Debian package docker-compose) is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env.update(env_values)
    empty = tmp_path / "empty.env"  # so a developer's .env cannot satisfy the guards
    empty.write_text("")
    return subprocess.run(
        [binary, "--env-file", str(empty), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )


def test_docker_compose_config(tmp_path: Path) -> None:
    proc = _docker_compose({name: "x" * 16 for name in REQUIRED}, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# One cluster secret and one gateway credential; the static test covers every guard.
@pytest.mark.parametrize("missing", ["SHOAL_GOSSIP_KEY", "SHOAL_SECRET_KEY"])
def test_docker_compose_refuses_missing_secret(tmp_path: Path, missing: str) -> None:
    proc = _docker_compose({name: "x" * 16 for name in REQUIRED - {missing}}, tmp_path)
    assert proc.returncode != 0
    assert "set it" in proc.stderr


def test_node_can_scale() -> None:
    node = services()["node"]
    assert "container_name" not in node
    assert "ports" not in node, "published host ports would collide between replicas"
    assert "/data" in node["volumes"], "each replica needs its own anonymous /data volume"
    assert "SHOAL_NAME" not in node["environment"] and "--name" not in node["command"]
    assert "SHOAL_ADVERTISE_API" not in node["environment"]
    assert "--advertise-api" not in node["command"]


def test_zone_comes_from_env_with_default() -> None:
    assert re.fullmatch(r"\$\{SHOAL_ZONE:-[\w.-]+\}", services()["node"]["environment"]
                        ["SHOAL_ZONE"])


def test_gateway_publishes_s3_and_waits_for_nodes() -> None:
    gateway = services()["gateway"]
    assert any(str(p).endswith(":9000") for p in gateway["ports"])
    assert "node" in gateway["depends_on"]


def test_flags_are_in_the_interface() -> None:
    for name, svc in shoal_services().items():
        command, sub = svc["command"], svc["command"][0]
        used = {arg[2:] for arg in command if str(arg).startswith("--")}
        assert used <= FLAGS[sub], f"{name}: unknown flags {used - FLAGS[sub]}"
        allowed = {env_name(f) for f in FLAGS[sub]} | SECRETS
        if sub == "gateway":
            allowed |= GATEWAY_CREDENTIALS
        shoal_env = {k for k in svc["environment"] if k.startswith("SHOAL_")}
        assert shoal_env <= allowed, f"{name}: unknown variables {shoal_env - allowed}"


def test_every_agent_joins_the_node_service() -> None:
    for name, svc in shoal_services().items():
        command = [str(a) for a in svc["command"]]
        join = command[command.index("--join") + 1]
        host, _, port = join.partition(":")
        assert host == "node" and port == "7946", f"{name} joins {join}"


def test_secrets_are_required_from_the_environment() -> None:
    for name, svc in shoal_services().items():
        wanted = SECRETS | (GATEWAY_CREDENTIALS if svc["command"][0] == "gateway" else set())
        for var in wanted:
            value = svc["environment"].get(var, "")
            assert value.startswith(f"${{{var}:?"), f"{name}: {var} must be ${{{var}:?...}}"
        assert not any(str(a).startswith("--") and env_name(a[2:]) in REQUIRED
                       for a in svc["command"]), "secrets must not be flags (visible in ps)"


def test_healthcheck_and_restart_policy() -> None:
    for name, svc in shoal_services().items():
        assert svc["restart"] in {"always", "unless-stopped", "on-failure"}, name
        assert svc["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
        port = svc["environment"]["HEALTHCHECK_PORT"]
        listen = "--api-port" if svc["command"][0] == "node" else "--port"
        command = [str(a) for a in svc["command"]]
        assert command[command.index(listen) + 1] == port, f"{name} probes the wrong port"


def test_dockerfile_basics() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim-bookworm\b", text, re.M)
    assert re.search(r"apt-get install\b.*\bserf\b", text)
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and user[-1] not in {"root", "0"}
    assert re.search(r"^VOLUME\s+\[?\"?/data", text, re.M)
    assert re.search(r"^HEALTHCHECK\s", text, re.M)
    assert re.search(r'^ENTRYPOINT \["shoal"\]', text, re.M)
