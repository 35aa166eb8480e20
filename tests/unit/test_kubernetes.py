"""The Kubernetes manifests (deploy/kubernetes): valid against the Kubernetes API schemas (kubernetes-validate,
strict: unknown fields are errors; the schemas ship inside that PyPI package, nothing is downloaded), their
commands accepted by the real `synthfarm` command line, and their key layout authenticating for real."""
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
import zmq

from synthfarm.cli import main
from synthfarm.farm import auth
from synthfarm.farm import protocol as p
from synthfarm.farm.client import FarmClient
from synthfarm.farm.coordinator import Coordinator
from synthfarm.farm.health import HealthFile

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
VERSIONS = ("1.28.0", "1.37.0")  # an older cluster still common, and the newest the validator knows


def documents():
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((KUBE / resource).read_text()) if d]
    return docs


def by_kind(kind):
    return [d for d in documents() if d["kind"] == kind]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_kubernetes(version):
    docs = documents()
    assert {d["kind"] for d in docs} == {"Service", "StatefulSet", "Deployment"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_catches_a_wrong_field():
    worker = by_kind("Deployment")[0]
    worker["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["exec"]["comand"] = ["x"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(worker, VERSIONS[-1], strict=True)


def containers():
    for doc in by_kind("StatefulSet") + by_kind("Deployment"):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            yield doc, container


def parse(args, keys: Path):
    """Parse a container's arguments with the real command line, without running the command."""
    args = [str(keys) if a == "/keys" else a for a in args]
    command = main.commands[args[0]]
    ctx = command.make_context(args[0], args[1:], parent=main.make_context("synthfarm", [args[0]]))
    return ctx.params


def test_container_commands_are_accepted_by_synthfarm(tmp_path):
    keys = tmp_path / "keys"
    auth.init_keys(keys)
    seen = set()
    for doc, container in containers():
        params = parse(container["args"], keys)
        seen.add(container["args"][0])
        assert params["health_file"] == "/tmp/synthfarm-health"
        for probe in ("livenessProbe", "startupProbe"):
            if probe in container:
                command = container[probe]["exec"]["command"]
                assert command[0] == "synthfarm"
                assert parse(command[1:], keys)["file"] == params["health_file"]
    assert seen == {"coordinator", "worker"}


def test_workers_request_a_gpu_each_and_reach_the_service():
    (worker,) = by_kind("Deployment")
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    (service,) = by_kind("Service")
    endpoint = container["args"][container["args"].index("--connect") + 1]
    workers_port = next(port["port"] for port in service["spec"]["ports"] if port["name"] == "workers")
    assert endpoint == f"tcp://{service['metadata']['name']}:{workers_port}"
    (coordinator,) = by_kind("StatefulSet")
    assert coordinator["spec"]["serviceName"] == service["metadata"]["name"]
    assert coordinator["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def secret_layout(pod_spec, keys: Path, target: Path) -> Path:
    """Lay the Secret's files out as the kubelet would mount them (items: key -> path)."""
    (volume,) = [v for v in pod_spec["volumes"] if v["name"] == "keys"]
    for item in volume["secret"]["items"]:
        path = target / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((keys / item["key"]).read_bytes())
    return target


def test_secret_layout_authenticates_a_worker_and_the_dashboard(tmp_path):
    keys = tmp_path / "keys"
    auth.init_keys(keys)  # what the README tells the user to put in the Secret (--from-file=keys/)
    (coordinator,) = by_kind("StatefulSet")
    (worker,) = by_kind("Deployment")
    coord_keys = secret_layout(coordinator["spec"]["template"]["spec"], keys, tmp_path / "coordinator-mount")
    worker_keys = secret_layout(worker["spec"]["template"]["spec"], keys, tmp_path / "worker-mount")
    context = zmq.Context()
    coord = Coordinator(tmp_path / "state", *["tcp://127.0.0.1:0"] * 4, keys=coord_keys, context=context)
    thread = threading.Thread(target=coord.serve, daemon=True)
    thread.start()
    try:
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        auth.secure_client(sock, worker_keys, "worker")
        sock.connect(coord.workers_endpoint)
        sock.send_multipart(p.encode("HELLO", p.Hello(worker_id="pod-0")))
        assert sock.poll(10_000), "the coordinator did not answer a worker holding the Secret's files"
        kind, _ = p.decode(sock.recv_multipart())
        assert kind == "WELCOME"
        sock.close()
        # the dashboard, inside the coordinator's pod, is a client holding the same mount
        assert FarmClient(coord.clients_endpoint, keys=coord_keys, context=context).status()["batches"] == []
    finally:
        coord.stop_event.set()
        thread.join(timeout=10)
        context.term()


def test_health_probe_follows_the_coordinator_loop(tmp_path):
    health = tmp_path / "health"
    probe = [sys.executable, "-m", "synthfarm.cli", "health", str(health), "--max-age", "2"]
    assert subprocess.run(probe, capture_output=True, text=True).returncode == 1  # not started yet
    context = zmq.Context()
    coord = Coordinator(tmp_path / "state", *["tcp://127.0.0.1:0"] * 4, heartbeat=0.2, context=context)
    coord.health = HealthFile(health, every=0.2)
    thread = threading.Thread(target=coord.serve, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not health.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = subprocess.run(probe, capture_output=True, text=True)
        assert alive.returncode == 0, alive.stdout
        assert "role coordinator" in alive.stdout
    finally:
        coord.stop_event.set()
        thread.join(timeout=10)
        context.term()
    time.sleep(2.5)  # the loop has stopped: the file ages past --max-age
    stuck = subprocess.run(probe, capture_output=True, text=True)
    assert stuck.returncode == 1 and "stuck" in stuck.stdout, shlex.join(probe)
