"""The real `helm` (v4) for chart tests: `template` renders a chart offline into objects, `lint`
runs `helm lint --strict`.

`scripts/install-helm.sh` (run by `make setup`) puts helm and kubectl into the venv's bin/;
`helm_binary()` finds that one first, then one on PATH. Every call runs with a timeout and
without a cluster or the network: a fresh, empty helm home (no repositories, no registry
logins), KUBECONFIG pointing at nothing, and an HTTP(S) proxy that refuses, so anything that
would reach out fails at once instead (`lookup` in `helm template` returns nothing anyway).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = ["HelmError", "HelmNotFoundError", "helm_binary", "lint", "load_manifests", "template"]

TIMEOUT_S = 60.0
INSTALL_HINT = "helm is not installed: run make setup"
_EMPTY: Mapping[str, Any] = {}


class HelmError(Exception):
    """helm exited non-zero (or timed out: returncode -1); carries what it said."""

    def __init__(self, command: Sequence[str], returncode: int, stderr: str, stdout: str = ""):
        self.command = list(command)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        # lint reports its findings on stdout, the verdict on stderr: show both.
        said = "\n".join(part.strip() for part in (stdout, stderr) if part.strip())
        super().__init__(f"{' '.join(self.command)} exited {returncode}:\n{said}")


class HelmNotFoundError(FileNotFoundError):
    """No helm binary in the venv or on PATH."""


def helm_binary() -> Path | None:
    """The venv's helm (where scripts/install-helm.sh puts it), else one on PATH; None when
    there is none."""
    beside = Path(sys.prefix) / "bin" / "helm"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("helm")
    return Path(found) if found else None


def template(
    chart: Path,
    *,
    release: str = "heron",
    namespace: str = "heron",
    values: Sequence[Path] = (),
    set_values: Mapping[str, str] = _EMPTY,
    set_files: Mapping[str, Path] = _EMPTY,
    api_versions: Sequence[str] = (),
    kube_version: str = "1.33.0",
    include_crds: bool = True,
    timeout: float = TIMEOUT_S,
) -> list[dict[str, Any]]:
    """Every object `helm template` renders (CRDs from crds/ too, unless include_crds=False),
    in output order, empty documents dropped. `set_values` go through `--set` (helm's typing:
    "3" becomes a number, commas split lists), `set_files` through `--set-file`;
    `api_versions` ("monitoring.coreos.com/v1/ServiceMonitor") switch on capability-gated
    templates. Raises HelmError on any failure, values.schema.json violations included."""
    args = ["template", release, str(chart), "--namespace", namespace]
    args += ["--kube-version", kube_version]
    if include_crds:
        args.append("--include-crds")
    for path in values:
        args += ["--values", str(path)]
    for key, value in set_values.items():
        args += ["--set", f"{key}={value}"]
    for key, path in set_files.items():
        args += ["--set-file", f"{key}={path}"]
    for api_version in api_versions:
        args += ["--api-versions", api_version]
    return load_manifests(_run(args, timeout))


def lint(
    chart: Path,
    *,
    values: Sequence[Path] = (),
    strict: bool = True,
    kube_version: str = "1.33.0",
    timeout: float = TIMEOUT_S,
) -> str:
    """`helm lint` output; HelmError when it fails (with strict=True, on any [WARNING], e.g. an
    API deprecated in `kube_version`). Helm 4 only logs, and does not fail on, a `required`
    value missing from values.yaml."""
    args = ["lint", str(chart), "--kube-version", kube_version]
    if strict:
        args.append("--strict")
    for path in values:
        args += ["--values", str(path)]
    return _run(args, timeout)


def install_notes(
    chart: Path,
    release: str,
    namespace: str,
    *,
    values: Sequence[Path] = (),
    set_values: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT_S,
) -> str:
    """NOTES.txt as `helm install --dry-run=client` prints it (no cluster needed)."""
    args = ["install", release, str(chart), "-n", namespace, "--dry-run=client"]
    for path in values:
        args += ["-f", str(path)]
    for key, value in (set_values or {}).items():
        args += ["--set", f"{key}={value}"]
    return _run(args, timeout).partition("\nNOTES:\n")[2]


def load_manifests(text: str) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML stream, as the API server would read them: empty
    documents dropped, timestamps kept as strings. yaml.YAMLError on a key given twice in one
    mapping, TypeError on a document that is not a mapping."""
    objects: list[dict[str, Any]] = []
    for index, document in enumerate(yaml.load_all(text, Loader=_ManifestLoader)):
        if document is None:
            continue
        if not isinstance(document, dict):
            raise TypeError(f"document {index} is a {type(document).__name__}, not an object")
        objects.append(document)
    return objects


class _ManifestLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key twice in one mapping (the API server's strict decoding
    does; PyYAML would keep the last silently), leaves `2024-01-01` a string (a Kubernetes
    string field would get a date object otherwise) and reads a bare `=` as a string."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<:` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_value(loader: _ManifestLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_ManifestLoader.add_constructor("tag:yaml.org,2002:value", _construct_value)


def _run(args: Sequence[str], timeout: float) -> str:
    binary = helm_binary()
    if binary is None:
        raise HelmNotFoundError(INSTALL_HINT)
    command = [str(binary), *args]
    with tempfile.TemporaryDirectory(prefix="heron-helm-") as home:
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=_offline_env(Path(home)),
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            stderr = e.stderr.decode() if isinstance(e.stderr, bytes) else e.stderr or ""
            raise HelmError(command, -1, f"{stderr}\ntimed out after {timeout} s") from e
    if done.returncode != 0:
        raise HelmError(command, done.returncode, done.stderr, done.stdout)
    return done.stdout


def _offline_env(home: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("HELM_") and key.upper() not in ("NO_PROXY", "ALL_PROXY")
    }
    refuse = "http://127.0.0.1:9"  # the discard port: nothing listens, connections fail at once
    env.update(
        HOME=str(home),
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
        KUBECONFIG=str(home / "no-kubeconfig"),
        HTTP_PROXY=refuse,
        HTTPS_PROXY=refuse,
        http_proxy=refuse,
        https_proxy=refuse,
    )
    return env
