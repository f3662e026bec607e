"""The contract of the deployment descriptions in deploy/ (docker compose and Kubernetes).

`make deploy-check` validates the files against their schemas with the real tools; these tests need
nothing but PyYAML and check what the schemas cannot: secrets only by reference, the Rasa replicas'
probes, at least two replicas, every host in a URL is a service of the same description, the environment
variable names the servers read, the seeding order and the Rasa replicas' memory.

Each check is a function that returns a list of problems. The real files must give none, and each check is
also run on a copy with one thing broken, which it must report (so no check passes vacuously).
"""
from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_DIR = ROOT / "deploy" / "compose"
K8S_DIR = ROOT / "deploy" / "kubernetes"

READY_PATH = "/webhooks/multimodal/ready"
LIVE_PATH = "/webhooks/multimodal/"
RASA_PORT = 5005
ACTIONS_PORT = 5055
RASA_COMMAND = ["python", "scripts/rasa_run.py", "run", "--endpoints", "endpoints.yml",
                "--credentials", "credentials.yml", "--port", str(RASA_PORT)]
ACTIONS_COMMAND = ["python", "-m", "actions.server", "--port", str(ACTIONS_PORT)]
SEED_COMMAND = ["python", "-m", "shop.seed"]
ACTIONS_URL = f"http://actions:{ACTIONS_PORT}/webhook"

#: What each server reads from its environment (the names `make cluster` uses too).
RASA_ENV = {"TRACKER_STORE_URL", "REDIS_URL", "DATABASE_URL", "ACTION_SERVER_TOKEN", "SENDER_ID_SECRET",
            "CUSTOMER_TOKEN_SECRET", "ACTIONS_URL"}
ACTIONS_ENV = {"ACTIONS_HOST", "ACTION_SERVER_TOKEN", "DATABASE_URL"}
#: Secrets that may be left unset (the feature is then off); every other secret is required.
OPTIONAL_SECRETS = {"CHAT_API_TOKEN"}
#: An environment variable with such a name holds a secret.
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|PRIVATE_KEY)$")
MIN_RASA_MEMORY = 3 * 1024**3

#: scheme://[user[:password]@]host[:port][/path]; the password may be a ${VAR...} or $(VAR) reference.
URL = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9+.-]*)://"
    r"(?:(?P<user>[^:@/]*)(?::(?P<password>\$\{[^}]*\}|\$\([^)]*\)|[^@/]*))?@)?"
    r"(?P<host>[^:/?#]+)(?::(?P<port>\d+))?(?P<path>/[^?#]*)?$"
)
COMPOSE_REQUIRED = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}$")
COMPOSE_OPTIONAL = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-)?\}$")
K8S_REFERENCE = re.compile(r"^\$\((?P<name>[A-Za-z_][A-Za-z0-9_]*)\)$")

Problems = List[str]


# --- loading ------------------------------------------------------------------------------------------------
def load_compose() -> Dict[str, Any]:
    with open(COMPOSE_DIR / "docker-compose.yml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def manifest_files() -> List[Path]:
    return sorted(p for p in K8S_DIR.glob("*.y*ml") if p.name != "kustomization.yaml")


def load_manifests() -> List[Dict[str, Any]]:
    docs: List[Dict[str, Any]] = []
    for path in manifest_files():
        with open(path, encoding="utf-8") as handle:
            docs.extend(doc for doc in yaml.safe_load_all(handle) if doc)
    return docs


@pytest.fixture()
def compose() -> Dict[str, Any]:
    return load_compose()


@pytest.fixture()
def manifests() -> List[Dict[str, Any]]:
    return load_manifests()


# --- shared helpers -----------------------------------------------------------------------------------------
def url_parts(value: str) -> Optional[re.Match]:
    return URL.match(value.strip()) if "://" in value else None


#: Compose sizes are binary and case-blind (3g = 3 GiB); Kubernetes: Ki/Mi/Gi binary, k/M/G decimal.
COMPOSE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2,
                 "g": 1024**3, "gb": 1024**3}
K8S_UNITS = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "k": 1000, "M": 1000**2,
             "G": 1000**3, "T": 1000**4}


def memory_bytes(quantity: Any, units: Dict[str, int]) -> float:
    """Bytes of a memory size in one of the unit tables above; ValueError for anything else."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", str(quantity).strip())
    unit = match.group(2) if match else None
    if units is COMPOSE_UNITS and unit is not None:
        unit = unit.lower()
    if unit not in units:
        raise ValueError(f"not a memory size: {quantity!r}")
    return float(match.group(1)) * units[unit]


# --- Compose ------------------------------------------------------------------------------------------------
def service_env(service: Dict[str, Any]) -> Dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def compose_secret_problems(compose: Dict[str, Any]) -> Problems:
    """Secrets only as ${NAME:?...} (required) or, for an optional one, ${NAME:-}; passwords in URLs too."""
    problems = []
    for name, service in compose["services"].items():
        for var, value in service_env(service).items():
            if SECRET_NAME.search(var):
                form = COMPOSE_OPTIONAL if var in OPTIONAL_SECRETS else COMPOSE_REQUIRED
                match = form.match(value) or COMPOSE_REQUIRED.match(value)
                if not match or match.group("name") != var:
                    problems.append(f"{name}: {var} must be ${{{var}:?...}}, not {value!r}")
            url = url_parts(value)
            password = url.group("password") if url else None
            if password is not None and not COMPOSE_REQUIRED.match(password):
                problems.append(f"{name}: {var} has a password that is not a required ${{VAR:?...}}")
    return problems


def compose_probe_problems(compose: Dict[str, Any], haproxy_cfg: str) -> Problems:
    """Rasa's health check and the load balancer's check ask the readiness route."""
    problems = []
    check = compose["services"]["rasa"].get("healthcheck") or {}
    test = check.get("test")
    test = " ".join(test) if isinstance(test, list) else str(test or "")
    if f"{RASA_PORT}{READY_PATH}" not in test:
        problems.append(f"rasa: the healthcheck does not ask :{RASA_PORT}{READY_PATH}: {test!r}")
    if not re.search(rf"^\s*option\s+httpchk\s+GET\s+{re.escape(READY_PATH)}\s*$", haproxy_cfg, re.M):
        problems.append(f"haproxy.cfg: no `option httpchk GET {READY_PATH}`")
    if not re.search(rf"^\s*server-template\s+\S+\s+\d+\s+rasa:{RASA_PORT}\b.*\bcheck\b", haproxy_cfg, re.M):
        problems.append(f"haproxy.cfg: no checked server-template for rasa:{RASA_PORT}")
    return problems


def compose_replica_problems(compose: Dict[str, Any]) -> Problems:
    problems = []
    for name in ("rasa", "actions"):
        replicas = (compose["services"][name].get("deploy") or {}).get("replicas", 1)
        if not isinstance(replicas, int) or replicas < 2:
            problems.append(f"{name}: deploy.replicas is {replicas!r}, fewer than 2")
        if compose["services"][name].get("ports"):
            problems.append(f"{name}: publishes host ports, which collide between replicas")
    return problems


def compose_host_problems(compose: Dict[str, Any]) -> Problems:
    """Every host in an environment URL is a service of the file."""
    services = set(compose["services"])
    problems = []
    for name, service in compose["services"].items():
        for var, value in service_env(service).items():
            url = url_parts(value)
            if url is None:
                continue
            if url.group("host") not in services:
                problems.append(f"{name}: {var} names host {url.group('host')!r}, which is no service")
    return problems


def compose_env_problems(compose: Dict[str, Any]) -> Problems:
    problems = []
    services = compose["services"]
    for name, wanted in (("rasa", RASA_ENV), ("actions", ACTIONS_ENV)):
        missing = wanted - set(service_env(services[name]))
        if missing:
            problems.append(f"{name}: environment lacks {sorted(missing)}")
    if service_env(services["actions"]).get("ACTIONS_HOST") != "0.0.0.0":
        problems.append("actions: ACTIONS_HOST must be 0.0.0.0 (the default listens on loopback only)")
    rasa = service_env(services["rasa"])
    if rasa.get("SANIC_PROXIES_COUNT") != "1":
        problems.append("rasa: SANIC_PROXIES_COUNT must be 1 (one proxy, HAProxy, sets X-Forwarded-For)")
    if rasa.get("ACTIONS_URL") != ACTIONS_URL:
        problems.append(f"rasa: ACTIONS_URL is {rasa.get('ACTIONS_URL')!r}, not {ACTIONS_URL!r}")
    for var, scheme in (("TRACKER_STORE_URL", "postgresql"), ("DATABASE_URL", "postgresql"),
                        ("REDIS_URL", "redis")):
        url = url_parts(rasa.get(var, ""))
        if url is None or not url.group("scheme").startswith(scheme):
            problems.append(f"rasa: {var} is not a {scheme} URL")
    return problems


def compose_command_problems(compose: Dict[str, Any]) -> Problems:
    problems = []
    for name, command in (("rasa", RASA_COMMAND), ("actions", ACTIONS_COMMAND), ("seed", SEED_COMMAND)):
        if compose["services"][name].get("command") != command:
            problems.append(f"{name}: command is not {command}")
    return problems


def compose_order_problems(compose: Dict[str, Any]) -> Problems:
    """The servers start after the seed job finished; the seed job after PostgreSQL answers."""
    problems = []
    services = compose["services"]
    for name in ("rasa", "actions"):
        condition = ((services[name].get("depends_on") or {}).get("seed") or {}).get("condition")
        if condition != "service_completed_successfully":
            problems.append(f"{name}: does not wait for seed to complete (condition {condition!r})")
    condition = ((services["seed"].get("depends_on") or {}).get("postgres") or {}).get("condition")
    if condition != "service_healthy":
        problems.append("seed: does not wait for a healthy postgres")
    if services["seed"].get("restart") not in ("no", None):
        problems.append("seed: a one-shot job must not restart")
    return problems


def compose_resource_problems(compose: Dict[str, Any]) -> Problems:
    resources = (compose["services"]["rasa"].get("deploy") or {}).get("resources") or {}
    reserved = (resources.get("reservations") or {}).get("memory")
    if reserved is None or memory_bytes(reserved, COMPOSE_UNITS) < MIN_RASA_MEMORY:
        return [f"rasa: reserves {reserved!r} of memory, less than 3 GiB"]
    return []


# --- Kubernetes ---------------------------------------------------------------------------------------------
def find(docs: List[Dict[str, Any]], kind: str, name: str) -> Optional[Dict[str, Any]]:
    return next((d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name), None)


def pod_spec(workload: Dict[str, Any]) -> Dict[str, Any]:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return workload["spec"]["template"]["spec"]


def pod_specs(docs: List[Dict[str, Any]]) -> Iterator[Tuple[str, Dict[str, Any]]]:
    for doc in docs:
        if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"):
            yield f"{doc['kind']}/{doc['metadata']['name']}", pod_spec(doc)


def containers(spec: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    yield from spec.get("initContainers") or []
    yield from spec.get("containers") or []


def main_container(docs: List[Dict[str, Any]], deployment: str) -> Dict[str, Any]:
    workload = find(docs, "Deployment", deployment)
    assert workload is not None, f"no Deployment {deployment}"
    spec = pod_spec(workload)
    return next((c for c in spec["containers"] if c["name"] == deployment), spec["containers"][0])


def container_env(docs: List[Dict[str, Any]], container: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """Every variable a container gets: its env entries, and the keys of the ConfigMaps of envFrom."""
    env: Dict[str, Dict[str, Any]] = {}
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef")
        config = find(docs, "ConfigMap", ref["name"]) if ref else None
        for key, value in ((config or {}).get("data") or {}).items():
            env[key] = {"name": key, "value": value}
    for entry in container.get("env") or []:
        env[entry["name"]] = entry
    return env


def k8s_secret_problems(docs: List[Dict[str, Any]]) -> Problems:
    """Secrets only through secretKeyRef; a password in a URL only as $(VAR) of such a variable."""
    problems = []
    for doc in docs:
        if doc.get("kind") == "Secret":
            problems.append(f"Secret/{doc['metadata']['name']}: secrets are created outside the repository")
        if doc.get("kind") == "ConfigMap":
            for key, value in (doc.get("data") or {}).items():
                url = url_parts(str(value))
                if SECRET_NAME.search(key) or (url and url.group("password") is not None):
                    problems.append(f"ConfigMap/{doc['metadata']['name']}: {key} is a secret in plain text")
    for where, spec in pod_specs(docs):
        for container in containers(spec):
            from_secret = set()
            for entry in container.get("env") or []:
                var, value = entry["name"], entry.get("value")
                if (entry.get("valueFrom") or {}).get("secretKeyRef"):
                    from_secret.add(var)
                    continue
                if SECRET_NAME.search(var):
                    problems.append(f"{where}/{container['name']}: {var} is not from a secretKeyRef")
                url = url_parts(str(value or ""))
                if url and url.group("password") is not None:
                    ref = K8S_REFERENCE.match(url.group("password"))
                    if not ref or ref.group("name") not in from_secret:
                        problems.append(f"{where}/{container['name']}: {var} has a password that is not "
                                        "$(VAR) of an earlier secretKeyRef variable")
    return problems


def k8s_probe_problems(docs: List[Dict[str, Any]]) -> Problems:
    rasa = main_container(docs, "rasa")
    ports = {p.get("name"): p["containerPort"] for p in rasa.get("ports") or []}
    problems = []
    for probe, path in (("readinessProbe", READY_PATH), ("livenessProbe", LIVE_PATH)):
        http = (rasa.get(probe) or {}).get("httpGet") or {}
        port = ports.get(http.get("port"), http.get("port"))
        if http.get("path") != path or port != RASA_PORT:
            problems.append(f"rasa: {probe} is not GET :{RASA_PORT}{path} ({http})")
    return problems


def k8s_replica_problems(docs: List[Dict[str, Any]]) -> Problems:
    problems = []
    for name in ("rasa", "actions"):
        replicas = find(docs, "Deployment", name)["spec"].get("replicas", 1)
        if replicas < 2:
            problems.append(f"Deployment/{name}: replicas {replicas}, fewer than 2")
    for hpa in (d for d in docs if d.get("kind") == "HorizontalPodAutoscaler"):
        if hpa["spec"].get("minReplicas", 1) < 2:
            problems.append(f"HorizontalPodAutoscaler/{hpa['metadata']['name']}: minReplicas below 2")
    return problems


def k8s_host_problems(docs: List[Dict[str, Any]]) -> Problems:
    """Every host in a URL of an env entry or a ConfigMap is a Service of the manifests."""
    services = {d["metadata"]["name"] for d in docs if d.get("kind") == "Service"}
    values: List[Tuple[str, str]] = []
    for doc in docs:
        if doc.get("kind") == "ConfigMap":
            where = f"ConfigMap/{doc['metadata']['name']}"
            values += [(f"{where}/{k}", str(v)) for k, v in (doc.get("data") or {}).items()]
    for where, spec in pod_specs(docs):
        for container in containers(spec):
            env = container.get("env") or []
            values += [(f"{where}/{e['name']}", str(e["value"])) for e in env if "value" in e]
    problems = []
    for where, value in values:
        url = url_parts(value)
        if url and url.group("host").split(".")[0] not in services:
            problems.append(f"{where}: host {url.group('host')!r} is no Service")
    return problems


def k8s_env_problems(docs: List[Dict[str, Any]]) -> Problems:
    problems = []
    for name, wanted in (("rasa", RASA_ENV), ("actions", ACTIONS_ENV)):
        missing = wanted - set(container_env(docs, main_container(docs, name)))
        if missing:
            problems.append(f"Deployment/{name}: environment lacks {sorted(missing)}")
    actions_host = container_env(docs, main_container(docs, "actions")).get("ACTIONS_HOST", {}).get("value")
    if actions_host != "0.0.0.0":
        problems.append("Deployment/actions: ACTIONS_HOST must be 0.0.0.0")
    rasa = container_env(docs, main_container(docs, "rasa"))
    if rasa.get("SANIC_PROXIES_COUNT", {}).get("value") != "1":
        problems.append("Deployment/rasa: SANIC_PROXIES_COUNT must be 1 (the Ingress controller)")
    if rasa.get("ACTIONS_URL", {}).get("value") != ACTIONS_URL:
        problems.append(f"Deployment/rasa: ACTIONS_URL is not {ACTIONS_URL}")
    for _, spec in pod_specs(docs):
        for container in containers(spec):
            for source in container.get("envFrom") or []:
                ref = (source.get("configMapRef") or {}).get("name")
                if ref and find(docs, "ConfigMap", ref) is None:
                    problems.append(f"{container['name']}: envFrom names a missing ConfigMap {ref}")
    return problems


def k8s_command_problems(docs: List[Dict[str, Any]]) -> Problems:
    problems = []
    for name, command in (("rasa", RASA_COMMAND), ("actions", ACTIONS_COMMAND)):
        if main_container(docs, name).get("command") != command:
            problems.append(f"Deployment/{name}: command is not {command}")
    seeds = [d for d in docs if d.get("kind") == "Job"
             and any(c.get("command") == SEED_COMMAND for c in pod_spec(d)["containers"])]
    if not seeds:
        problems.append(f"no Job runs {SEED_COMMAND}")
    return problems


def k8s_order_problems(docs: List[Dict[str, Any]]) -> Problems:
    """Rasa and the action servers wait in an init container until the seed job has filled the database."""
    problems = []
    for name in ("rasa", "actions"):
        inits = pod_spec(find(docs, "Deployment", name)).get("initContainers") or []
        if not any("wait_for_seed.py" in " ".join(c.get("command") or []) for c in inits):
            problems.append(f"Deployment/{name}: no init container waits for the seeded database")
    scripts = find(docs, "ConfigMap", "deploy-scripts")
    if not scripts or "wait_for_seed.py" not in (scripts.get("data") or {}):
        problems.append("ConfigMap/deploy-scripts lacks wait_for_seed.py")
    return problems


def k8s_resource_problems(docs: List[Dict[str, Any]]) -> Problems:
    requests = (main_container(docs, "rasa").get("resources") or {}).get("requests") or {}
    if "memory" not in requests or memory_bytes(requests["memory"], K8S_UNITS) < MIN_RASA_MEMORY:
        return [f"Deployment/rasa: requests {requests.get('memory')!r} of memory, less than 3 GiB"]
    return []


def kustomization_problems(listed: List[str], files: List[str]) -> Problems:
    return ([f"{f} is not in kustomization.yaml" for f in sorted(set(files) - set(listed))]
            + [f"kustomization.yaml lists the missing {f}" for f in sorted(set(listed) - set(files))])


# --- the real files pass ------------------------------------------------------------------------------------
COMPOSE_CHECKS: Dict[str, Callable[[Dict[str, Any]], Problems]] = {
    "secrets": compose_secret_problems,
    "probes": lambda c: compose_probe_problems(c, (COMPOSE_DIR / "haproxy.cfg").read_text(encoding="utf-8")),
    "replicas": compose_replica_problems,
    "hosts": compose_host_problems,
    "env": compose_env_problems,
    "commands": compose_command_problems,
    "order": compose_order_problems,
    "resources": compose_resource_problems,
}
K8S_CHECKS: Dict[str, Callable[[List[Dict[str, Any]]], Problems]] = {
    "secrets": k8s_secret_problems,
    "probes": k8s_probe_problems,
    "replicas": k8s_replica_problems,
    "hosts": k8s_host_problems,
    "env": k8s_env_problems,
    "commands": k8s_command_problems,
    "order": k8s_order_problems,
    "resources": k8s_resource_problems,
}


@pytest.mark.parametrize("check", sorted(COMPOSE_CHECKS))
def test_compose_file_keeps_the_contract(compose: Dict[str, Any], check: str) -> None:
    assert COMPOSE_CHECKS[check](compose) == []


@pytest.mark.parametrize("check", sorted(K8S_CHECKS))
def test_kubernetes_manifests_keep_the_contract(manifests: List[Dict[str, Any]], check: str) -> None:
    assert K8S_CHECKS[check](manifests) == []


def test_kustomization_lists_every_manifest() -> None:
    with open(K8S_DIR / "kustomization.yaml", encoding="utf-8") as handle:
        listed = yaml.safe_load(handle)["resources"]
    assert kustomization_problems(listed, [p.name for p in manifest_files()]) == []


def test_every_secret_key_is_documented(manifests: List[Dict[str, Any]]) -> None:
    """The README says how to create the Secret: it must name every key the manifests read."""
    readme = (K8S_DIR / "README.md").read_text(encoding="utf-8")
    keys = {
        (entry["valueFrom"]["secretKeyRef"]["name"], entry["valueFrom"]["secretKeyRef"]["key"])
        for _, spec in pod_specs(manifests) for container in containers(spec)
        for entry in container.get("env") or [] if (entry.get("valueFrom") or {}).get("secretKeyRef")
    }
    assert keys, "no secretKeyRef at all"
    assert [k for k in sorted(keys) if k[0] not in readme or f"{k[1]}=" not in readme] == []


def test_tracker_database_is_created_where_the_url_points(compose: Dict[str, Any],
                                                           manifests: List[Dict[str, Any]]) -> None:
    compose_db = url_parts(service_env(compose["services"]["rasa"])["TRACKER_STORE_URL"]).group("path")
    rasa_env = container_env(manifests, main_container(manifests, "rasa"))
    k8s_db = url_parts(rasa_env["TRACKER_STORE_URL"]["value"])
    init_sql = (COMPOSE_DIR / "postgres-init.sql").read_text(encoding="utf-8")
    k8s_sql = "".join(find(manifests, "ConfigMap", "postgres-init")["data"].values())
    for path, sql in ((compose_db, init_sql), (k8s_db.group("path"), k8s_sql)):
        assert re.search(rf"CREATE DATABASE {re.escape(path.lstrip('/'))};", sql)


def test_dockerfile_builds_the_project_image() -> None:
    dockerfile = (COMPOSE_DIR / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.10-slim\b", dockerfile, re.M)
    assert re.search(r"apt-get install .*\bffmpeg\b", dockerfile)
    assert "-r requirements.txt -c constraints.txt" in dockerfile
    assert re.search(r"make .*\btrain\b", dockerfile)
    assert re.search(r"^USER (?!root|0\b)\S+", dockerfile, re.M), "the servers must not run as root"
    # The image's endpoints.yml reads ACTIONS_URL (before that, it named localhost).
    assert re.search(r"^RUN python deploy/compose/deploy_endpoints\.py endpoints\.yml$", dockerfile, re.M)


def _deploy_endpoints_module() -> Any:
    spec = importlib.util.spec_from_file_location("deploy_endpoints", COMPOSE_DIR / "deploy_endpoints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_image_endpoints_read_actions_url(tmp_path: Path) -> None:
    """The rewritten endpoints.yml of the image: ACTIONS_URL as a plain ${...}, the shared stores kept."""
    out = tmp_path / "endpoints.yml"
    assert _deploy_endpoints_module().main([str(ROOT / "endpoints.yml"), str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    written = yaml.safe_load(text)
    with open(ROOT / "endpoints.yml", encoding="utf-8") as handle:
        original = yaml.safe_load(handle)
    assert written["action_endpoint"]["url"] == "${ACTIONS_URL}"
    assert "url: ${ACTIONS_URL}\n" in text and "token: ${ACTION_SERVER_TOKEN}\n" in text
    assert written["action_endpoint"]["token"] == original["action_endpoint"]["token"]
    for store in ("tracker_store", "lock_store"):
        assert written[store] == original[store]


@pytest.mark.parametrize("store", ["tracker_store", "lock_store"])
def test_image_endpoints_refuse_a_missing_shared_store(tmp_path: Path, store: str) -> None:
    with open(ROOT / "endpoints.yml", encoding="utf-8") as handle:
        endpoints = yaml.safe_load(handle)
    del endpoints[store]
    source = tmp_path / "endpoints.yml"
    source.write_text(yaml.safe_dump(endpoints), encoding="utf-8")
    assert _deploy_endpoints_module().main([str(source)]) == 1
    assert yaml.safe_load(source.read_text(encoding="utf-8")) == endpoints  # left unchanged


# --- each check can fail ------------------------------------------------------------------------------------
def _set(path: str, value: Any) -> Callable[[Any], None]:
    """A mutation that sets `path` (dots; [n] for a list index) to `value`."""
    def mutate(doc: Any) -> None:
        *parents, last = re.findall(r"[^.\[\]]+", path)
        for key in parents:
            doc = doc[int(key)] if isinstance(doc, list) else doc[key]
        if isinstance(doc, list):
            doc[int(last)] = value
        else:
            doc[last] = value
    return mutate


def _delete(path: str) -> Callable[[Any], None]:
    def mutate(doc: Any) -> None:
        *parents, last = path.split(".")
        for key in parents:
            doc = doc[key]
        del doc[last]
    return mutate


COMPOSE_BREAKAGES = [
    ("secrets", _set("services.rasa.environment.SENDER_ID_SECRET", "hunter2-literal")),
    ("secrets", _set("services.rasa.environment.ACTION_SERVER_TOKEN", "${ACTION_SERVER_TOKEN}")),
    ("secrets", _set("services.seed.environment.DATABASE_URL", "postgresql://shop:pw@postgres:5432/shop")),
    ("probes", _set("services.rasa.healthcheck.test", ["CMD", "true"])),
    ("replicas", _set("services.rasa.deploy.replicas", 1)),
    ("replicas", _set("services.actions.deploy.replicas", 1)),
    ("hosts", _set("services.rasa.environment.REDIS_URL", "redis://cache:6379/0")),
    ("env", _delete("services.rasa.environment.TRACKER_STORE_URL")),
    ("env", _set("services.actions.environment.ACTIONS_HOST", "127.0.0.1")),
    ("env", _set("services.rasa.environment.ACTIONS_URL", "http://localhost:5055/webhook")),
    ("env", _delete("services.rasa.environment.SANIC_PROXIES_COUNT")),
    ("commands", _set("services.rasa.command", ["rasa", "run"])),
    ("order", _delete("services.rasa.depends_on.seed")),
    ("resources", _set("services.rasa.deploy.resources.reservations.memory", "1g")),
]


@pytest.mark.parametrize("check,mutate", COMPOSE_BREAKAGES,
                         ids=[f"{c}-{i}" for i, (c, _) in enumerate(COMPOSE_BREAKAGES)])
def test_compose_checks_catch_breakage(compose: Dict[str, Any], check: str, mutate: Callable) -> None:
    broken = copy.deepcopy(compose)
    mutate(broken)
    assert COMPOSE_CHECKS[check](broken) != []


def test_compose_probe_check_reads_haproxy(compose: Dict[str, Any]) -> None:
    cfg = (COMPOSE_DIR / "haproxy.cfg").read_text(encoding="utf-8")
    assert compose_probe_problems(compose, cfg.replace(READY_PATH, LIVE_PATH)) != []


Docs = List[Dict[str, Any]]


def _k8s_env(deployment: str, var: str, entry: Optional[Dict[str, Any]]) -> Callable[[Docs], None]:
    """A mutation of one env entry of a Deployment's main container (None deletes it)."""
    def mutate(docs: List[Dict[str, Any]]) -> None:
        env = main_container(docs, deployment)["env"]
        index = next(i for i, e in enumerate(env) if e["name"] == var)
        if entry is None:
            del env[index]
        else:
            env[index] = entry
    return mutate


def _k8s(kind: str, name: str, mutate: Callable[[Dict[str, Any]], None]) -> Callable[[Docs], None]:
    return lambda docs: mutate(find(docs, kind, name))


def _rasa(mutate: Callable[[Dict[str, Any]], None]) -> Callable[[Docs], None]:
    return lambda docs: mutate(main_container(docs, "rasa"))


K8S_BREAKAGES = [
    ("secrets", _k8s_env("rasa", "SENDER_ID_SECRET", {"name": "SENDER_ID_SECRET", "value": "literal"})),
    ("secrets", _k8s_env("actions", "DATABASE_URL",
                         {"name": "DATABASE_URL", "value": "postgresql://shop:pw@postgres:5432/shop"})),
    ("secrets", lambda docs: docs.append({"kind": "Secret", "metadata": {"name": "s"}, "data": {}})),
    ("secrets", _k8s("ConfigMap", "assistant-config", _set("data.ACTION_SERVER_TOKEN", "literal"))),
    ("probes", _rasa(_set("readinessProbe.httpGet.path", LIVE_PATH))),
    ("probes", _rasa(_delete("livenessProbe"))),
    ("probes", _rasa(_set("readinessProbe.httpGet.port", 5055))),
    ("replicas", _k8s("Deployment", "rasa", _set("spec.replicas", 1))),
    ("replicas", _k8s("HorizontalPodAutoscaler", "rasa", _set("spec.minReplicas", 1))),
    ("hosts", _k8s("ConfigMap", "assistant-config", _set("data.REDIS_URL", "redis://cache:6379/0"))),
    ("hosts", _k8s_env("rasa", "TRACKER_STORE_URL", {"name": "TRACKER_STORE_URL",
                                                     "value": "postgresql://db:5432/tracker"})),
    ("env", _k8s_env("rasa", "CUSTOMER_TOKEN_SECRET", None)),
    ("env", _k8s("ConfigMap", "assistant-config", _delete("data.ACTIONS_URL"))),
    ("env", _k8s("ConfigMap", "assistant-config", _set("data.SANIC_PROXIES_COUNT", "0"))),
    ("env", _k8s_env("actions", "ACTIONS_HOST", {"name": "ACTIONS_HOST", "value": "127.0.0.1"})),
    ("commands", _rasa(_set("command", ["rasa", "run"]))),
    ("commands", _k8s("Job", "seed-db", _set("spec.template.spec.containers[0].command", ["true"]))),
    ("order", _k8s("Deployment", "actions", _set("spec.template.spec.initContainers", []))),
    ("resources", _rasa(_set("resources.requests.memory", "2Gi"))),
]


@pytest.mark.parametrize("check,mutate", K8S_BREAKAGES,
                         ids=[f"{c}-{i}" for i, (c, _) in enumerate(K8S_BREAKAGES)])
def test_kubernetes_checks_catch_breakage(manifests: Docs, check: str, mutate: Callable) -> None:
    broken = copy.deepcopy(manifests)
    mutate(broken)
    assert K8S_CHECKS[check](broken) != []


def test_kustomization_check_catches_a_missing_file() -> None:
    assert kustomization_problems(["a.yaml"], ["a.yaml", "b.yaml"]) != []
    assert kustomization_problems(["a.yaml", "gone.yaml"], ["a.yaml"]) != []


@pytest.mark.parametrize("quantity,units,expected", [
    ("3Gi", K8S_UNITS, 3 * 1024**3), ("512Mi", K8S_UNITS, 512 * 1024**2), ("4G", K8S_UNITS, 4e9),
    ("3g", COMPOSE_UNITS, 3 * 1024**3), ("3072M", COMPOSE_UNITS, 3 * 1024**3),
    ("1.5gb", COMPOSE_UNITS, 1.5 * 1024**3),
])
def test_memory_sizes(quantity: str, units: Dict[str, int], expected: float) -> None:
    assert memory_bytes(quantity, units) == expected


@pytest.mark.parametrize("quantity,units", [("3Gi", COMPOSE_UNITS), ("3g", K8S_UNITS), ("lots", K8S_UNITS)])
def test_memory_sizes_refuse_the_other_notation(quantity: str, units: Dict[str, int]) -> None:
    with pytest.raises(ValueError):
        memory_bytes(quantity, units)
