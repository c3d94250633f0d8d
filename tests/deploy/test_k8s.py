"""deploy/k8s: schema-valid manifests whose names, labels, ports, probes, images and commands agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from flask import Flask

from api import create_app
from shared.config import Config
from tests.deploy import files

API = "recycling-wallet"
WORKLOADS = {
    "recycling-wallet": "recycling-wallet-api",
    "recycling-wallet-worker": "recycling-wallet-worker",
    "recycling-wallet-beat": "recycling-wallet-worker",
    "recycling-wallet-flower": "recycling-wallet-worker",
}
KUBERNETES_VERSION = kubernetes_validate.latest_version()


def _pod(deployment: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def _container(name: str) -> dict[str, Any]:
    container: dict[str, Any] = _pod(files.manifest("Deployment", name))["containers"][0]
    return container


@pytest.fixture(scope="module")
def app() -> Flask:
    return create_app(Config.from_env({}, database_url="sqlite://"))


def _routes(app: Flask) -> set[str]:
    return {rule.rule for rule in app.url_map.iter_rules() if "GET" in (rule.methods or set())}


@pytest.mark.parametrize("path", sorted(files.K8S_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_schema_valid(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc["kind"] == "Kustomization":
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_example_and_the_job() -> None:
    kustomization = yaml.safe_load((files.K8S_DIR / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in files.K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present - {"secret.example.yaml", "migrate-job.yaml"}
    assert {i["name"] for i in kustomization["images"]} == set(WORKLOADS.values())


def test_every_deployment_selects_its_own_pods_only() -> None:
    deployments = files.of_kind("Deployment")
    assert {d["metadata"]["name"] for d in deployments} == set(WORKLOADS)
    for deployment in deployments:
        selector = deployment["spec"]["selector"]["matchLabels"]
        for other in deployments:
            labels = other["spec"]["template"]["metadata"]["labels"]
            selects = selector.items() <= labels.items()
            assert selects == (other is deployment), (deployment["metadata"]["name"], other["metadata"]["name"])


def test_service_reaches_api_pods_on_the_gunicorn_port() -> None:
    service = files.manifest("Service", "recycling-wallet-service")
    assert service["spec"]["type"] == "NodePort"
    selector = service["spec"]["selector"]
    for deployment in files.of_kind("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert (selector.items() <= labels.items()) == (deployment["metadata"]["name"] == API)
    (port,) = service["spec"]["ports"]
    container_port = _container(API)["ports"][0]["containerPort"]
    bind_port = int(files.image_env("Dockerfile.api")["GUNICORN_BIND"].rsplit(":", 1)[1])
    exposed = [int(p) for e in files.dockerfile_stages("Dockerfile.api")[-1].of("EXPOSE") for p in e.value]
    assert port["port"] == port["targetPort"] == container_port == bind_port == 8000
    assert exposed == [8000]
    env = {e["name"]: e["value"] for e in _container(API)["env"]}
    assert env["GUNICORN_BIND"].endswith(":8000")


def test_ingress_as_in_the_seed_with_tls_and_no_public_metrics(app: Flask) -> None:
    ingress = files.manifest("Ingress", "recycling-wallet-ingress")
    annotations = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] in _routes(app)
    assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    (rule,) = ingress["spec"]["rules"]
    paths = {p["path"]: p["backend"]["service"] for p in rule["http"]["paths"]}
    service = files.manifest("Service", "recycling-wallet-service")
    assert paths["/"] == {"name": service["metadata"]["name"], "port": {"number": service["spec"]["ports"][0]["port"]}}
    assert paths["/metrics"] == {"name": "block-metrics", "port": {"name": "use-annotation"}}
    action = json.loads(annotations["alb.ingress.kubernetes.io/actions.block-metrics"])
    assert action["type"] == "fixed-response" and action["fixedResponseConfig"]["statusCode"] == "404"


def test_api_probes_point_at_real_routes(app: Flask) -> None:
    container = _container(API)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    routes = _routes(app)
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] in routes, probe
        assert get["port"] in ports, probe
    timeout = float(files.manifest("ConfigMap", "recycling-wallet-config")["data"]["HEALTH_CHECK_TIMEOUT_SECONDS"])
    assert container["readinessProbe"]["timeoutSeconds"] > timeout


def test_flower_probes_its_unauthenticated_healthcheck() -> None:
    container = _container("recycling-wallet-flower")
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthcheck"
    assert container["ports"][0]["containerPort"] == 5555
    service = files.manifest("Service", "recycling-wallet-flower")
    assert service["spec"]["type"] == "ClusterIP"  # operators port-forward; never public
    assert "FLOWER_BASIC_AUTH" in files.manifest("Secret", "recycling-wallet-secrets")["stringData"]


def test_replicas_and_strategies() -> None:
    assert files.manifest("Deployment", API)["spec"]["replicas"] == 3
    beat = files.manifest("Deployment", "recycling-wallet-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    scaled = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in files.of_kind("HorizontalPodAutoscaler")}
    assert "recycling-wallet-beat" not in scaled, "two beats would schedule every periodic task twice"
    assert files.manifest("Deployment", API)["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def _hpa_metrics(hpa: dict[str, Any]) -> dict[str, int]:
    return {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]}


def test_autoscalers() -> None:
    api = files.manifest("HorizontalPodAutoscaler", "recycling-wallet-hpa")
    assert api["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": API}
    assert (api["spec"]["minReplicas"], api["spec"]["maxReplicas"]) == (3, 20)
    assert _hpa_metrics(api) == {"cpu": 70, "memory": 80}
    worker = files.manifest("HorizontalPodAutoscaler", "recycling-wallet-worker-hpa")
    assert worker["spec"]["scaleTargetRef"]["name"] == "recycling-wallet-worker"
    for hpa in (api, worker):
        target = files.manifest("Deployment", hpa["spec"]["scaleTargetRef"]["name"])
        requests = _pod(target)["containers"][0]["resources"]["requests"]
        # Utilization is a share of the request: without one the HPA cannot compute it.
        assert set(_hpa_metrics(hpa)) <= set(requests)
        assert hpa["spec"]["minReplicas"] <= target["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]


def test_pdb_covers_the_api() -> None:
    pdb = files.manifest("PodDisruptionBudget", "recycling-wallet-pdb")
    labels = files.manifest("Deployment", API)["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < files.manifest("Deployment", API)["spec"]["replicas"]


def test_images_and_commands_agree_with_the_dockerfiles_and_compose() -> None:
    compose = files.compose_config()["services"]
    for name, image in WORKLOADS.items():
        container = _container(name)
        assert container["image"] == image, name
        assert "command" not in container, f"{name} keeps the image ENTRYPOINT"
    assert "args" not in _container(API)  # the image CMD: api.wsgi:app
    worker_entrypoint = files.image_command("Dockerfile.worker")[:3]
    for deployment, service in (
        ("recycling-wallet-worker", "worker"),
        ("recycling-wallet-beat", "beat"),
        ("recycling-wallet-flower", "flower"),
    ):
        assert _container(deployment)["args"] == compose[service]["command"], deployment
        assert worker_entrypoint == ["celery", "-A", "worker.celery_app"]
    job = files.manifest("Job", "recycling-wallet-migrate")
    migrate = job["spec"]["template"]["spec"]["containers"][0]
    assert migrate["command"] == compose["migrate"]["entrypoint"]
    assert migrate["image"].split(":")[0] == WORKLOADS[API]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_pods_run_as_the_image_user_with_resources_and_config() -> None:
    api_uid = int(files.dockerfile_stages("Dockerfile.api")[-1].of("USER")[-1].value[0].split(":")[0])
    worker_uid = int(files.dockerfile_stages("Dockerfile.worker")[-1].of("USER")[-1].value[0].split(":")[0])
    pods = [_pod(d) for d in files.of_kind("Deployment")] + [
        j["spec"]["template"]["spec"] for j in files.of_kind("Job")
    ]
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] in {api_uid, worker_uid}
        for container in pod["containers"]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), container["name"]
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), container["name"]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), "writable /tmp"
            refs = {next(iter(ref)): ref[next(iter(ref))]["name"] for ref in container["envFrom"]}
            assert refs == {"configMapRef": "recycling-wallet-config", "secretRef": "recycling-wallet-secrets"}


def test_api_drains_before_it_is_killed() -> None:
    pod = _pod(files.manifest("Deployment", API))
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    graceful = int(files.manifest("ConfigMap", "recycling-wallet-config")["data"]["GUNICORN_GRACEFUL_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + graceful


def test_worker_metrics_port_agrees() -> None:
    port = int(files.manifest("ConfigMap", "recycling-wallet-config")["data"]["WORKER_METRICS_PORT"])
    worker = files.manifest("Deployment", "recycling-wallet-worker")
    assert worker["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert _container("recycling-wallet-worker")["ports"][0]["containerPort"] == port


def test_rate_limiter_and_broker_use_different_redis_databases() -> None:
    env = {**files.manifest("ConfigMap", "recycling-wallet-config")["data"]}
    env.update(files.manifest("Secret", "recycling-wallet-secrets")["stringData"])
    config = Config.from_env({**env, "METRICS_TOKEN": "x"})
    assert config.rate_limit_storage.rsplit("/", 1)[1] != config.broker_url.rsplit("/", 1)[1]
