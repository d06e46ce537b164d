"""Security of the rendered chart (docs/deploy.md, "Security"), rendered by the real helm:

- the gRPC APIs have TLS and a bearer token by default: the certificates and token the chart
  makes work with a real gRPC server and Heron's client, the services read them from the
  environment the chart gives, and the operator and `helm test` use them; a Secret of one's
  own, cert-manager and mutual TLS are values;
- Redis's password and the token live only in their Secrets (never a ConfigMap, never a
  literal in a pod spec);
- every pod passes the "restricted" Pod Security Standard (tests/support/pod_security.py);
- the NetworkPolicies let each pod be reached only by the pods that need it: computed from the
  rendered policies' selectors and the rendered pods' labels and ports.
"""

from __future__ import annotations

import base64
import datetime
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.conftest import REPO
from tests.support.helm import HelmError, install_notes, lint, template
from tests.support.kube_schemas import validate
from tests.support.pod_security import pods, restricted_violations

Objects = list[dict[str, Any]]
Json = dict[str, Any]

CI = REPO / "charts" / "heron" / "ci"
RELEASE = "heron"
NAMESPACE = "video"
MONITORING_API = "monitoring.coreos.com/v1"
CERT_MANAGER_API = "cert-manager.io/v1"
CONTROL = "heron-facemask-control"
DETECTOR = "heron-facemask-detector"
TLS_SECRET, CA_SECRET = "heron-grpc-tls", "heron-grpc-ca"
CLIENT_SECRET, TOKEN_SECRET = "heron-grpc-client", "heron-grpc-token"
ON = {"operator.enabled": "true"}
MUTUAL = {"grpc.tls.mutual": "true"}
SCENARIOS: dict[str, tuple[list[str | Json], list[str]]] = {
    "default": (["default-values.yaml"], []),
    "everything": (
        [
            "gpu-triton-values.yaml",
            {
                "operator": {"enabled": True},
                "redis": {"metrics": {"enabled": True}},
                "grpc": {"tls": {"mutual": True}},
            },
        ],
        [MONITORING_API],
    ),
    "cpu-external-redis": (["external-redis-values.yaml"], []),
    "cert-manager": (
        [
            "default-values.yaml",
            {
                "operator": {"enabled": True},
                "grpc": {"tls": {"mutual": True, "certManager": {"issuerRef": {"name": "ca"}}}},
            },
        ],
        [CERT_MANAGER_API],
    ),
    "own-secrets": (
        [
            "default-values.yaml",
            {
                "operator": {"enabled": True},
                "grpc": {
                    "tls": {
                        "mutual": True,
                        "existingSecret": "my-tls",
                        "existingClientSecret": "my-client",
                    },
                    "auth": {"existingSecret": "my-token", "existingSecretKey": "t"},
                },
            },
        ],
        [],
    ),
    "insecure": (
        [
            "default-values.yaml",
            {
                "operator": {"enabled": True},
                "grpc": {"tls": {"enabled": False}, "auth": {"enabled": False}},
                "networkPolicy": {"enabled": False},
            },
        ],
        [],
    ),
}


# --- renders, shared -------------------------------------------------------------------------


class Renders:
    """helm template of each scenario, made once when first asked."""

    def __init__(self, chart: Path, folder: Path) -> None:
        self.chart, self.folder = chart, folder
        self.done: dict[str, Objects] = {}

    def values(self, name: str, items: list[str | Json]) -> list[Path]:
        paths = []
        for index, item in enumerate(items):
            if isinstance(item, str):
                paths.append(CI / item)
            else:
                path = self.folder / f"{name}-{index}.yaml"
                path.write_text(yaml.safe_dump(item))
                paths.append(path)
        return paths

    def __call__(self, scenario: str) -> Objects:
        if scenario not in self.done:
            items, apis = SCENARIOS[scenario]
            self.done[scenario] = render(
                self.chart, *self.values(scenario, items), api_versions=apis
            )
        return self.done[scenario]


def render(chart: Path, *values: Path, **kwargs: Any) -> Objects:
    return template(chart, release=RELEASE, namespace=NAMESPACE, values=list(values), **kwargs)


@pytest.fixture(scope="module")
def renders(helm: Path, chart_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Renders:
    return Renders(chart_dir, tmp_path_factory.mktemp("security-values"))


def find(objects: Objects, kind: str, name: str) -> Json:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} rendered"
    return found[0]


def named(objects: Objects, kind: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objects if o["kind"] == kind)


def pod_of(objects: Objects, kind: str, name: str) -> Json:
    obj = find(objects, kind, name)
    spec: Json = obj["spec"] if kind == "Pod" else obj["spec"]["template"]["spec"]
    return spec


def container(objects: Objects, kind: str, name: str, container_name: str) -> Json:
    found: Json = next(
        c for c in pod_of(objects, kind, name)["containers"] if c["name"] == container_name
    )
    return found


def env_of(c: Json) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def secret_data(objects: Objects, name: str) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in find(objects, "Secret", name)["data"].items()}


def mounted(spec: Json, c: Json, path: str) -> tuple[str, str]:
    """(Secret name, key) of the file `path` in container `c` of pod `spec`."""
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for mount in c.get("volumeMounts", []):
        folder = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(folder):
            secret = volumes[mount["name"]]["secret"]
            relative = path[len(folder) :]
            (item,) = [i for i in secret["items"] if i["path"] == relative]
            return secret["secretName"], item["key"]
    raise AssertionError(f"{path} is not mounted in {c['name']}")


# --- the restricted Pod Security Standard ------------------------------------------------------


RESTRICTED_POD: Json = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "app",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
    "volumes": [{"name": "tmp", "emptyDir": {}}],
}


def changed(path: str, value: Any) -> Json:
    """RESTRICTED_POD with `path` (dotted; containers.0 is the first container) set."""
    pod: Json = yaml.safe_load(yaml.safe_dump(RESTRICTED_POD))
    node: Any = pod
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[parts[-1]] = value
    return pod


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("hostNetwork", True, "pod: hostNetwork must be false"),
        ("hostPID", True, "pod: hostPID must be false"),
        ("volumes", [{"name": "h", "hostPath": {"path": "/"}}], "hostPath volumes are not"),
        ("volumes", [{"name": "n", "nfs": {"server": "x", "path": "/"}}], "type ['nfs'] is not"),
        ("securityContext.runAsNonRoot", False, "runAsNonRoot must be true"),
        ("securityContext.runAsUser", 0, "pod: runAsUser must not be 0"),
        ("securityContext.seccompProfile", {"type": "Unconfined"}, "must not be Unconfined"),
        ("securityContext.seccompProfile", None, "seccompProfile.type must be RuntimeDefault"),
        ("securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"}], "not in the safe"),
        ("securityContext.seLinuxOptions", {"type": "spc_t"}, "seLinuxOptions.type 'spc_t'"),
        ("containers.0.securityContext.privileged", True, "privileged must be false"),
        ("containers.0.securityContext.allowPrivilegeEscalation", None, "allowPrivilegeEsc"),
        ("containers.0.securityContext.capabilities", {"drop": ["NET_RAW"]}, "must include ALL"),
        (
            "containers.0.securityContext.capabilities",
            {"drop": ["ALL"], "add": ["CHOWN"]},
            "may hold only NET_BIND_SERVICE",
        ),
        (
            "containers.0.securityContext.capabilities",
            {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
            "goes beyond the baseline",
        ),
        ("containers.0.securityContext.runAsNonRoot", False, "runAsNonRoot must not be false"),
        ("containers.0.securityContext.procMount", "Unmasked", "procMount must be Default"),
        ("containers.0.ports", [{"containerPort": 80, "hostPort": 80}], "hostPort 80"),
        ("containers.0.securityContext.windowsOptions", {"hostProcess": True}, "hostProcess"),
    ],
)
def test_the_checker_refuses_what_the_standard_refuses(path: str, value: Any, problem: str) -> None:
    assert restricted_violations(RESTRICTED_POD) == []
    found = restricted_violations(changed(path, value))
    assert [p for p in found if problem in p], found


def test_the_checker_takes_container_level_settings_and_looks_at_every_container() -> None:
    pod = changed("securityContext", {})
    sc = pod["containers"][0]["securityContext"]
    sc.update(runAsNonRoot=True, seccompProfile={"type": "Localhost", "localhostProfile": "p"})
    assert restricted_violations(pod) == []
    pod["initContainers"] = [{"name": "init"}]
    found = restricted_violations(pod)
    assert all(p.startswith("initContainers[init]") for p in found) and len(found) == 4, found
    apparmor = {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
    assert restricted_violations(RESTRICTED_POD, apparmor) != []


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_pod_the_chart_renders_is_restricted(renders: Renders, scenario: str) -> None:
    found = list(pods(renders(scenario)))
    assert found
    for name, spec, pod_annotations in found:
        assert restricted_violations(spec, pod_annotations) == [], name
        # Beyond the standard: a read-only root, and no API token but the operator's.
        for c in spec["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, (name, c["name"])
        if name != "Deployment/heron-operator":
            assert spec["automountServiceAccountToken"] is False, name


# --- gRPC: TLS and the token, on by default ---------------------------------------------------


def server_containers(objects: Objects) -> dict[str, Json]:
    """The containers that serve gRPC: control, and inference where it has a Detector API."""
    return {
        "control": container(objects, "Deployment", CONTROL, "control"),
        "inference": container(objects, "Deployment", "heron-facemask", "inference"),
    }


def test_tls_and_the_token_are_on_by_default(renders: Renders, chart_dir: Path) -> None:
    values = yaml.safe_load((chart_dir / "values.yaml").read_text())
    assert values["grpc"]["tls"]["enabled"] is True and values["grpc"]["auth"]["enabled"] is True
    objects = renders("default")
    for service, c in server_containers(objects).items():
        env = env_of(c)
        spec = pod_of(objects, "Deployment", CONTROL if service == "control" else "heron-facemask")
        assert env["HERON_GRPC__TLS__CERT_FILE"] == "/etc/heron/grpc-tls/tls.crt", service
        assert env["HERON_GRPC__TLS__KEY_FILE"] == "/etc/heron/grpc-tls/tls.key", service
        assert "HERON_GRPC__TLS__CLIENT_CA_FILE" not in env  # not mutual by default
        assert env["HERON_GRPC__TOKEN"] == {
            "secretKeyRef": {"name": TOKEN_SECRET, "key": "token"}
        }, service
        assert mounted(spec, c, "/etc/heron/grpc-tls/tls.crt") == (TLS_SECRET, "tls.crt")
        assert mounted(spec, c, "/etc/heron/grpc-tls/tls.key") == (TLS_SECRET, "tls.key")
        volume = next(v for v in spec["volumes"] if v["name"] == "grpc-tls")
        assert volume["secret"]["defaultMode"] == 0o440  # the key: the pod's group only
    # The other containers of the pipeline pod get neither.
    pipeline = pod_of(objects, "Deployment", "heron-facemask")
    for c in pipeline["containers"]:
        if c["name"] != "inference":
            assert not [e for e in env_of(c) if e.startswith("HERON_GRPC__")], c["name"]
            assert "grpc-tls" not in {m["name"] for m in c["volumeMounts"]}, c["name"]


def test_the_service_reads_the_tls_and_token_the_chart_gives(
    renders: Renders, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control container's environment and settings file, as the pod has them, give the
    control service the certificate files and the token (the Secret's value)."""
    from heron.core.plan.settings.control import ControlSettings
    from heron.core.runtime.settings import load_settings

    objects = renders("default")
    settings_file = tmp_path / "control.yaml"
    configmap = find(objects, "ConfigMap", "heron-facemask-settings")
    settings_file.write_text(configmap["data"]["control.yaml"])
    token = secret_data(objects, TOKEN_SECRET)["token"].decode()
    for name, value in env_of(server_containers(objects)["control"]).items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
        elif name == "HERON_GRPC__TOKEN":
            ref = value["secretKeyRef"]
            monkeypatch.setenv(name, secret_data(objects, ref["name"])[ref["key"]].decode())
    monkeypatch.setenv("HERON_REDIS_URL", "redis://:pw@heron-redis:6379/0")
    settings = load_settings(ControlSettings, ["--config", str(settings_file)])
    assert settings.grpc.listen == "0.0.0.0:50051"  # the plan's, untouched
    assert settings.grpc.tls is not None
    assert settings.grpc.tls.cert_file == Path("/etc/heron/grpc-tls/tls.crt")
    assert settings.grpc.tls.key_file == Path("/etc/heron/grpc-tls/tls.key")
    assert settings.grpc.tls.client_ca_file is None
    assert settings.grpc.token is not None and settings.grpc.token.get_secret_value() == token
    assert token not in repr(settings) and token not in str(settings.redacted())


def load_cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    public = ca.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    try:
        hash_algorithm = cert.signature_hash_algorithm
        assert hash_algorithm is not None
        public.verify(
            cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hash_algorithm
        )
    except Exception:
        return False
    return cert.issuer == ca.subject


def names_of(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), [
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    ]


def test_the_charts_own_ca_signs_a_certificate_for_every_grpc_service(renders: Renders) -> None:
    objects = renders("default")
    ca_secret, server = find(objects, "Secret", CA_SECRET), find(objects, "Secret", TLS_SECRET)
    assert ca_secret["type"] == server["type"] == "kubernetes.io/tls"
    ca_data, data = secret_data(objects, CA_SECRET), secret_data(objects, TLS_SECRET)
    ca = load_cert(ca_data["tls.crt"])
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert data["ca.crt"] == ca_data["tls.crt"]
    cert = load_cert(data["tls.crt"])
    assert signed_by(cert, ca)
    dns, ips = names_of(cert)
    expected = []
    for service in (CONTROL, DETECTOR):
        expected += [service, f"{service}.{NAMESPACE}", f"{service}.{NAMESPACE}.svc",
                     f"{service}.{NAMESPACE}.svc.cluster.local"]  # fmt: skip
    assert dns == [*expected, "localhost"]
    assert ips == ["127.0.0.1", "::1"]  # kubectl port-forward
    assert server["metadata"]["annotations"]["heron.dev/dns-names"] == ",".join(dns)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages
    days = (cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)).days
    assert 3640 < days <= 3650  # grpc.tls.validityDays
    key = serialization.load_pem_private_key(data["tls.key"], None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]
    # No pod mounts the CA's key.
    for name, spec, _ in pods(objects):
        for volume in spec.get("volumes", []):
            assert volume.get("secret", {}).get("secretName") != CA_SECRET, name


def test_names_follow_the_values(chart_dir: Path, helm: Path) -> None:
    objects = render(
        chart_dir,
        CI / "default-values.yaml",
        set_values={
            "grpc.tls.clusterDomain": "corp.example",
            "grpc.tls.extraDnsNames[0]": "cams.example.com",
            "grpc.tls.validityDays": "30",
        },
    )
    cert = load_cert(secret_data(objects, TLS_SECRET)["tls.crt"])
    dns, _ = names_of(cert)
    assert f"{CONTROL}.{NAMESPACE}.svc.corp.example" in dns and "cams.example.com" in dns
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 30


@pytest.fixture
def chart_credentials(renders: Renders, tmp_path: Path) -> dict[str, Path | str]:
    """The mutual-TLS scenario's CA, server and client certificates as files, and its token."""
    objects = renders("everything")
    files: dict[str, Path | str] = {}
    for secret, keys in ((TLS_SECRET, ("tls.crt", "tls.key", "ca.crt")),
                         (CLIENT_SECRET, ("tls.crt", "tls.key"))):  # fmt: skip
        data = secret_data(objects, secret)
        for key in keys:
            path = tmp_path / f"{secret}-{key}"
            path.write_bytes(data[key])
            files[f"{secret}/{key}"] = path
    files["token"] = secret_data(objects, TOKEN_SECRET)["token"].decode()
    return files


@pytest.fixture
def chart_server(chart_credentials: dict[str, Any]) -> Iterator[int]:
    """Heron's gRPC server kit with the chart's certificate, mutual TLS and token, serving a
    stand-in Pipeline API: the port."""
    pytest.importorskip("grpc")
    from heron.core.grpc import GrpcServerSettings, ServiceBinding, TlsSettings, start_server
    from heron.v1 import control_pb2_grpc

    from tests.client.client_fakes import FakePipeline

    c = chart_credentials
    settings = GrpcServerSettings(
        listen="127.0.0.1:0",
        tls=TlsSettings(
            cert_file=c[f"{TLS_SECRET}/tls.crt"],
            key_file=c[f"{TLS_SECRET}/tls.key"],
            client_ca_file=c[f"{TLS_SECRET}/ca.crt"],
        ),
        token=c["token"],
    )
    pipeline = FakePipeline()
    running = start_server(
        settings,
        [ServiceBinding("heron.v1.Pipeline",
                        lambda s: control_pb2_grpc.add_PipelineServicer_to_server(pipeline, s))],
    )  # fmt: skip
    try:
        yield running.port
    finally:
        running.stop()


def test_the_charts_credentials_work_with_heron_s_server_and_client(
    chart_server: int, chart_credentials: dict[str, Any]
) -> None:
    """What the operator does: dial the address, check the Service's DNS name, present the
    client certificate and the token."""
    from heron.client import Client, ClientSettings, ClientTls
    from heron.client.errors import ServerUnavailableError, UnauthenticatedError

    c = chart_credentials

    def sources(server_name: str | None, *, client_cert: bool = True, token: str = "") -> int:
        tls = ClientTls(
            ca_file=c[f"{TLS_SECRET}/ca.crt"],
            cert_file=c[f"{CLIENT_SECRET}/tls.crt"] if client_cert else None,
            key_file=c[f"{CLIENT_SECRET}/tls.key"] if client_cert else None,
            server_name=server_name,
        )
        settings = ClientSettings(
            target=f"127.0.0.1:{chart_server}", tls=tls, token=token or c["token"], deadline_s=5
        )
        with Client(settings) as client:
            return len(client.list_sources())

    for name in (f"{CONTROL}.{NAMESPACE}.svc", CONTROL, f"{DETECTOR}.{NAMESPACE}", None):
        assert sources(name) == 0, name  # None: 127.0.0.1, the port-forward's address
    with pytest.raises(ServerUnavailableError):
        sources("heron-other-control.video.svc")  # a name the certificate does not carry
    with pytest.raises(ServerUnavailableError):
        sources(CONTROL, client_cert=False)  # mutual TLS: no client certificate, no handshake
    with pytest.raises(UnauthenticatedError):
        sources(CONTROL, token="not-the-token")


def test_the_token_is_random_and_only_in_its_secret(renders: Renders) -> None:
    objects = renders("default")
    secret = find(objects, "Secret", TOKEN_SECRET)
    assert secret["type"] == "Opaque"
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) == 48 and token.isalnum()
    # No cluster to read it back from: each render draws a new one.
    other = find(renders("everything"), "Secret", TOKEN_SECRET)["data"]["token"]
    assert token != base64.b64decode(other).decode()
    others = yaml.safe_dump_all([o for o in objects if o is not secret])
    assert token not in others and secret["data"]["token"] not in others


def test_no_secret_in_a_configmap_or_a_literal_env(renders: Renders) -> None:
    """Redis's password and the gRPC token: only in their Secrets, read by secretKeyRef."""
    for scenario in ("default", "everything"):
        objects = renders(scenario)
        secrets = {
            value.decode(errors="replace")
            for o in objects
            if o["kind"] == "Secret"
            for key, value in secret_data(objects, o["metadata"]["name"]).items()
            if key in ("password", "token")
        }
        assert len(secrets) == 2, scenario
        for obj in objects:
            if obj["kind"] == "Secret":
                continue
            text = yaml.safe_dump(obj)
            assert not [s for s in secrets if s in text], (scenario, obj["metadata"]["name"])
        for name, spec, _ in pods(objects):
            for c in spec["containers"]:
                for var, value in env_of(c).items():
                    if any(w in var for w in ("PASSWORD", "TOKEN", "AUTH")):
                        assert isinstance(value, dict) and "secretKeyRef" in value, (name, var)


def test_mutual_tls_asks_every_client_for_a_certificate(renders: Renders) -> None:
    objects = renders("everything")
    for service, c in server_containers(objects).items():
        assert env_of(c)["HERON_GRPC__TLS__CLIENT_CA_FILE"] == "/etc/heron/grpc-tls/ca.crt"
        spec = pod_of(objects, "Deployment", CONTROL if service == "control" else "heron-facemask")
        assert mounted(spec, c, "/etc/heron/grpc-tls/ca.crt") == (TLS_SECRET, "ca.crt")
    client = secret_data(objects, CLIENT_SECRET)
    ca = load_cert(secret_data(objects, CA_SECRET)["tls.crt"])
    cert = load_cert(client["tls.crt"])
    assert signed_by(cert, ca)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages


def test_the_operator_calls_the_pipelines_with_the_ca_its_certificate_and_the_token(
    renders: Renders,
) -> None:
    objects = renders("everything")
    spec = pod_of(objects, "Deployment", "heron-operator")
    (c,) = spec["containers"]
    env = env_of(c)
    ca, cert, key = (env[f"HERON_OPERATOR_PIPELINE_TLS_{k}_FILE"] for k in ("CA", "CERT", "KEY"))
    assert mounted(spec, c, ca) == (TLS_SECRET, "ca.crt")
    assert mounted(spec, c, cert) == (CLIENT_SECRET, "tls.crt")
    assert mounted(spec, c, key) == (CLIENT_SECRET, "tls.key")
    assert env["HERON_OPERATOR_PIPELINE_TOKEN"] == {
        "secretKeyRef": {"name": TOKEN_SECRET, "key": "token"}
    }
    # It never gets the servers' key.
    for volume in spec["volumes"]:
        items = volume.get("secret", {}).get("items", [])
        assert not [i for i in items if volume["secret"]["secretName"] == TLS_SECRET
                    and i["key"] == "tls.key"]  # fmt: skip
    from heron_operator.settings import OperatorSettings

    given = {k.removeprefix("HERON_OPERATOR_").lower(): v for k, v in env.items()
             if k.startswith("HERON_OPERATOR_PIPELINE_TLS")}  # fmt: skip
    read = OperatorSettings(**given, pipeline_token="t0ken")
    assert read.pipeline_tls_ca_file == Path(ca) and read.pipeline_tls_cert_file == Path(cert)


def test_helm_test_checks_health_over_tls(renders: Renders, tmp_path: Path) -> None:
    """The hook's rendered script, its environment pointing at the chart's CA and client
    certificate, against a gRPC health server with the chart's server certificate: SERVING."""
    grpc = pytest.importorskip("grpc")
    health_module = pytest.importorskip("grpc_health.v1.health")
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    objects = renders("everything")
    hook = find(objects, "Pod", "heron-test-control-health")
    assert hook["metadata"]["labels"]["heron.dev/grpc-client"] == "true"
    (c,) = hook["spec"]["containers"]
    env = {}
    for var in ("TLS_CA_FILE", "TLS_CERT_FILE", "TLS_KEY_FILE"):
        secret, key = mounted(hook["spec"], c, env_of(c)[var])
        path = tmp_path / var
        path.write_bytes(secret_data(objects, secret)[key])
        env[var] = str(path)
    server_data = secret_data(objects, TLS_SECRET)
    credentials = grpc.ssl_server_credentials(
        [(server_data["tls.key"], server_data["tls.crt"])],
        root_certificates=server_data["ca.crt"],
        require_client_auth=True,
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health = health_module.HealthServicer()
    health.set("heron.v1.Pipeline", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        script = c["command"][2]

        def check(**extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-c", script, "5", f"cams=127.0.0.1:{port}"],
                capture_output=True, text=True, check=False, timeout=60,
                env={**os.environ, **extra},
            )  # fmt: skip

        done = check(**env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "heron.v1.Pipeline SERVING" in done.stdout
        done = check(TLS_CA_FILE=env["TLS_CA_FILE"])  # no client certificate: refused
        assert done.returncode == 1, done.stdout
    finally:
        server.stop(None)


def test_insecure_when_switched_off(renders: Renders, helm: Path, chart_dir: Path) -> None:
    objects = renders("insecure")
    assert [n for n in named(objects, "Secret") if "grpc" in n] == []
    for c in server_containers(objects).values():
        assert not [e for e in env_of(c) if e.startswith("HERON_GRPC__")]
    operator_env = env_of(container(objects, "Deployment", "heron-operator", "operator"))
    assert not [e for e in operator_env if e.startswith("HERON_OPERATOR_PIPELINE_")]
    assert named(objects, "NetworkPolicy") == []
    hook = find(objects, "Pod", "heron-test-control-health")
    assert "TLS_CA_FILE" not in env_of(hook["spec"]["containers"][0])


def test_secrets_of_ones_own(renders: Renders) -> None:
    objects = renders("own-secrets")
    assert named(objects, "Secret") == ["heron-redis"]  # Redis's only: no gRPC one made
    control = server_containers(objects)["control"]
    assert env_of(control)["HERON_GRPC__TOKEN"] == {
        "secretKeyRef": {"name": "my-token", "key": "t"}
    }
    spec = pod_of(objects, "Deployment", CONTROL)
    assert mounted(spec, control, "/etc/heron/grpc-tls/tls.crt") == ("my-tls", "tls.crt")
    operator = pod_of(objects, "Deployment", "heron-operator")
    (c,) = operator["containers"]
    assert mounted(operator, c, "/etc/heron/grpc-client/tls.key") == ("my-client", "tls.key")


def test_cert_manager_issues_the_certificates(renders: Renders) -> None:
    objects = renders("cert-manager")
    assert [n for n in named(objects, "Secret") if "grpc" in n] == [TOKEN_SECRET]
    server = find(objects, "Certificate", TLS_SECRET)
    client = find(objects, "Certificate", CLIENT_SECRET)
    assert server["apiVersion"] == client["apiVersion"] == "cert-manager.io/v1"
    issuer = {"name": "ca", "kind": "Issuer", "group": "cert-manager.io"}
    assert server["spec"]["issuerRef"] == client["spec"]["issuerRef"] == issuer
    assert server["spec"]["secretName"] == TLS_SECRET
    assert f"{CONTROL}.{NAMESPACE}.svc" in server["spec"]["dnsNames"]
    assert server["spec"]["usages"][0] == "server auth"
    assert client["spec"]["usages"][0] == "client auth"
    assert server["spec"]["duration"] == "87600h"


@pytest.mark.parametrize(
    ("set_values", "apis", "said"),
    [
        ({"grpc.tls.certManager.issuerRef.name": "ca"}, [], "serves no cert-manager.io/v1"),
        (
            {"grpc.tls.existingSecret": "mine", "grpc.tls.certManager.issuerRef.name": "ca"},
            [CERT_MANAGER_API],
            "give existingSecret or certManager.issuerRef, not both",
        ),
        (
            {"grpc.tls.existingSecret": "mine", "grpc.tls.mutual": "true"},
            [],
            "needs grpc.tls.existingClientSecret",
        ),
        ({"grpc.tls.validityDays": "0"}, [], "at '/grpc/tls/validityDays'"),
        ({"grpc.tls.existingSecret": "My_Secret"}, [], "at '/grpc/tls/existingSecret'"),
        ({"grpc.auth.enabled": "yes"}, [], "at '/grpc/auth/enabled'"),
        (
            {"networkPolicy.grpcClients[0].podSelecter": "{}"},
            [],
            "at '/networkPolicy/grpcClients/0'",
        ),
        ({"networkPolicy.rtspClients": "anyone"}, [], "at '/networkPolicy/rtspClients'"),
        ({"operator.prometheusUrlSecret.key": ""}, [], "at '/operator/prometheusUrlSecret/key'"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else None,
)
def test_settings_that_cannot_work_are_refused_naming_them(
    chart_dir: Path, helm: Path, set_values: dict[str, str], apis: list[str], said: str
) -> None:
    with pytest.raises(HelmError) as refused:
        render(chart_dir, CI / "default-values.yaml", set_values=set_values, api_versions=apis)
    assert said in refused.value.stderr


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_security_objects_are_valid_kubernetes(renders: Renders, scenario: str) -> None:
    objects = [o for o in renders(scenario) if o["kind"] in ("NetworkPolicy", "Secret")]
    errors = {f"{o['kind']}/{o['metadata']['name']}": validate(o, "1.33") for o in objects}
    assert {k: v for k, v in errors.items() if v} == {}


@pytest.mark.parametrize("scenario", ["everything", "cert-manager"])
def test_lint_strict_passes(chart_dir: Path, helm: Path, renders: Renders, scenario: str) -> None:
    items, _ = SCENARIOS[scenario]
    values = renders.values(f"lint-{scenario}", items)
    if scenario == "cert-manager":  # lint has no --api-versions: without cert-manager, mutual
        values = [values[0], values[0].parent / "mutual.yaml"]
        values[1].write_text(yaml.safe_dump({"grpc": {"tls": {"mutual": True}}}))
    assert "0 chart(s) failed" in lint(chart_dir, values=values)


def test_the_operator_reads_a_prometheus_url_with_a_password_from_a_secret(
    chart_dir: Path, helm: Path
) -> None:
    objects = render(
        chart_dir,
        set_values={**ON, "operator.prometheusUrlSecret.name": "prom",
                    "operator.prometheusUrl": "http://ignored:9090"},
    )  # fmt: skip
    env = env_of(container(objects, "Deployment", "heron-operator", "operator"))
    assert env["HERON_OPERATOR_PROMETHEUS_URL"] == {"secretKeyRef": {"name": "prom", "key": "url"}}


def notes(helm: Path, chart: Path, *values: Path, **set_values: str) -> str:
    """NOTES.txt for this file's release (`helm` is the fixture: no helm, no test)."""
    del helm
    return install_notes(chart, RELEASE, NAMESPACE, values=values, set_values=set_values)


def test_notes_tell_how_to_get_the_ca_the_certificate_and_the_token(
    helm: Path, chart_dir: Path
) -> None:
    text = notes(helm, chart_dir, CI / "default-values.yaml", **MUTUAL)
    assert (
        "kubectl -n video get secret heron-grpc-tls -o jsonpath='{.data.ca\\.crt}' "
        "| base64 -d > heron-ca.crt"
    ) in text
    assert "get secret heron-grpc-client -o jsonpath='{.data.tls\\.key}'" in text
    assert (
        "export HERON_TOKEN=$(kubectl -n video get secret heron-grpc-token -o "
        "jsonpath='{.data.token}' | base64 -d)"
    ) in text
    assert (
        "heron status --server 127.0.0.1:50051 --tls-ca heron-ca.crt "
        "--tls-cert heron-client.crt --tls-key heron-client.key"
    ) in text
    assert (
        "grpcurl -cacert heron-ca.crt -cert heron-client.crt -key heron-client.key "
        '-H "authorization: Bearer $HERON_TOKEN" 127.0.0.1:50051 list'
    ) in text
    off = notes(helm, chart_dir, CI / "default-values.yaml",
                **{"grpc.tls.enabled": "false", "grpc.auth.enabled": "false"})  # fmt: skip
    assert "TLS is OFF" in off and "No bearer token" in off
    assert "grpcurl -plaintext 127.0.0.1:50051 list" in off


# --- NetworkPolicies --------------------------------------------------------------------------


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions) applied to labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        held = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not held:
            return False
    return True


class Pod:
    """A rendered pod: where it comes from, its namespace, labels and named ports."""

    def __init__(self, name: str, namespace: str, labels: Mapping[str, str], spec: Json) -> None:
        self.name, self.namespace, self.labels = name, namespace, dict(labels)
        self.ports = {p["name"] for c in spec["containers"] for p in c.get("ports", [])
                      if "name" in p}  # fmt: skip

    def __repr__(self) -> str:
        return self.name


def rendered_pods(objects: Objects) -> list[Pod]:
    found = []
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            template = obj["spec"]["template"]
        elif obj["kind"] == "Pod":
            template = obj
        else:
            continue
        found.append(Pod(f"{obj['kind']}/{obj['metadata']['name']}", NAMESPACE,
                         template["metadata"]["labels"], template["spec"]))  # fmt: skip
    return found


# Pods of other namespaces the tests place around the release: Prometheus, a stranger.
OUTSIDERS = [
    Pod("prometheus", "monitoring", {"app": "prometheus"}, {"containers": []}),
    Pod("stranger", "default", {"app": "curl"}, {"containers": []}),
]
NAMESPACE_LABELS = {
    ns: {"kubernetes.io/metadata.name": ns} for ns in (NAMESPACE, "monitoring", "default")
}


def admitted(policy: Json, rule: Json, candidates: list[Pod]) -> list[str]:
    """The candidates a rule's `from` lets in (all of them when it has no `from`)."""
    peers = rule.get("from")
    if peers is None:
        return sorted(p.name for p in candidates)
    names = set()
    for pod in candidates:
        for peer in peers:
            ns_selector, pod_selector = peer.get("namespaceSelector"), peer.get("podSelector")
            if "ipBlock" in peer:
                continue
            if ns_selector is None:
                in_namespace = pod.namespace == policy["metadata"]["namespace"]
            else:
                in_namespace = selects(ns_selector, NAMESPACE_LABELS[pod.namespace])
            if in_namespace and (pod_selector is None or selects(pod_selector, pod.labels)):
                names.add(pod.name)
    return sorted(names)


def reach(objects: Objects) -> dict[str, dict[str, list[str]]]:
    """For each pod the policies select: port name → the pods that may reach it (the pods of
    the release, Prometheus's and a stranger's)."""
    everyone = rendered_pods(objects) + OUTSIDERS
    out: dict[str, dict[str, list[str]]] = {}
    for policy in (o for o in objects if o["kind"] == "NetworkPolicy"):
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        targets = [p for p in rendered_pods(objects)
                   if selects(policy["spec"]["podSelector"], p.labels)]  # fmt: skip
        assert targets, f"NetworkPolicy {policy['metadata']['name']} selects no pod"
        for target in targets:
            assert target.name not in out, f"{target} is selected by two policies"
            ports: dict[str, list[str]] = {}
            for rule in policy["spec"].get("ingress") or []:
                for port in rule["ports"]:
                    assert port["port"] in target.ports, (target, port)  # a named port it has
                    ports[port["port"]] = admitted(policy, rule, everyone)
            out[target.name] = ports
    return out


PIPELINE_POD, CONTROL_POD = "Deployment/heron-facemask", f"Deployment/{CONTROL}"
OPERATOR_POD, HOOK_POD = "Deployment/heron-operator", "Pod/heron-test-control-health"
METRICS_PORTS = ["metrics-ingest", "metrics-mux", "metrics-infer", "metrics-tracker",
                 "metrics-overlay"]  # fmt: skip


def test_each_pod_is_reached_only_by_those_that_need_it(renders: Renders) -> None:
    found = reach(renders("everything"))
    every_pod = {p.name for p in rendered_pods(renders("everything"))}
    assert set(found) == every_pod - {HOOK_POD}  # every pod but the test hook is isolated
    clients = [PIPELINE_POD, CONTROL_POD]  # who uses Redis: the pipelines and their control
    assert found["StatefulSet/heron-redis"] == {"redis": clients, "metrics": ["prometheus"]}
    assert found["Deployment/heron-triton"] == {
        "grpc": [PIPELINE_POD],  # its inference calls Triton
        "http": [PIPELINE_POD],
        "metrics": ["prometheus"],
    }
    callers = [OPERATOR_POD, HOOK_POD]  # heron.dev/grpc-client: the operator and helm test
    assert found[CONTROL_POD] == {"grpc": callers, "metrics-control": ["prometheus"]}
    assert found[PIPELINE_POD] == {
        "grpc": callers,  # inference's Detector API
        "rtsp-8554": sorted(every_pod | {"prometheus", "stranger"}),  # rtspClients null: anyone
        **{port: ["prometheus"] for port in METRICS_PORTS},
    }
    assert found[OPERATOR_POD] == {"metrics": ["prometheus"]}


def test_pipelines_without_triton_are_not_its_clients(renders: Renders) -> None:
    objects = renders("default")
    pipeline = find(objects, "Deployment", "heron-facemask")["spec"]["template"]["metadata"]
    assert "heron.dev/triton-client" not in pipeline["labels"]
    assert "heron.dev/redis-client" in pipeline["labels"]
    assert named(objects, "NetworkPolicy") == ["heron-facemask", f"{CONTROL}", "heron-redis"]


def test_more_clients_are_values(chart_dir: Path, helm: Path, tmp_path: Path) -> None:
    lab = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "default"}}}
    values = tmp_path / "clients.yaml"
    values.write_text(yaml.safe_dump({"networkPolicy": {
        "grpcClients": [lab], "redisClients": [{"ipBlock": {"cidr": "10.0.0.0/8"}}],
        "rtspClients": [lab], "metricsClients": [],
    }}))  # fmt: skip
    objects = render(chart_dir, CI / "default-values.yaml", values)
    found = reach(objects)
    assert found[CONTROL_POD] == {"grpc": [HOOK_POD, "stranger"]}  # no metrics rule at all
    assert found[PIPELINE_POD] == {"grpc": [HOOK_POD, "stranger"], "rtsp-8554": ["stranger"]}
    redis = find(objects, "NetworkPolicy", "heron-redis")["spec"]["ingress"]
    assert redis[0]["from"][1] == {"ipBlock": {"cidr": "10.0.0.0/8"}}
    assert found["StatefulSet/heron-redis"] == {"redis": [PIPELINE_POD, CONTROL_POD]}


def test_a_pipeline_pod_with_nothing_to_serve_lets_nothing_in(
    chart_dir: Path, helm: Path, tmp_path: Path
) -> None:
    """No Detector API, no RTSP output, no scraper: an empty ingress list (deny), not null."""
    entry = yaml.safe_load((CI / "external-redis-values.yaml").read_text())["pipelines"][0]
    for service in entry["plan"]["services"]:
        if service["service"] == "inference":
            service["settings"].pop("grpc", None)
    values = tmp_path / "quiet.yaml"
    values.write_text(
        yaml.safe_dump({"pipelines": [entry], "networkPolicy": {"metricsClients": []}})
    )
    objects = render(chart_dir, CI / "external-redis-values.yaml", values)
    policy = find(objects, "NetworkPolicy", "heron-cpu-only")
    assert policy["spec"]["ingress"] == []
    assert validate(policy, "1.33") == []
