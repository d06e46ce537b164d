"""The images' Dockerfiles (images/<name>/Dockerfile, docs/images.md), checked without Docker.

No Docker daemon runs where the tests do, so nothing here builds an image. Each Dockerfile is
parsed — dockerfile-parse splits it into instructions, `parse_dockerfile` refuses what that
library lets through (unknown instructions, a continuation at the end, anything but ARG before
the first FROM, a base whose ARG has no default) — and held against what it must agree with:
the service packages (and the operator's, operator/heron_operator), pyproject.toml's extras,
the Makefile's pins and targets, the chart's UID, scripts/install-gstreamer.sh and the ports in
the code's defaults.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]
from heron.core.config.sinks import RtspSink
from heron.core.grpc.settings import split_listen
from heron.core.plan.options import PlanOptions
from heron.core.runtime.settings import MetricsSettings
from heron_operator.settings import OperatorSettings

REPO = Path(__file__).resolve().parents[2]
IMAGES_DIR = REPO / "images"
SERVICES_DIR = REPO / "services" / "heron"
OPERATOR_DIR = REPO / "operator"  # top-level packages beside heron (pyproject's packages.find)

UID = GID = 10001  # the chart's podSecurity.runAsUser/runAsGroup/fsGroup
SOURCE = "https://github.com/heron-project/heron"
# Modules with a __main__ that get no image, and why. Every other one is a service, a Job or
# the operator.
NOT_IMAGES = {
    "heron.run": "`heron run`, the local supervisor: in Kubernetes the chart starts the services",
}
# The module an image runs (`python3 -m`), where it is not `heron.<name>`, and the source folder
# that module must come from.
MODULE_OF = {"operator": "heron_operator"}
SOURCE_OF = {"operator": OPERATOR_DIR}
# The extra an image installs, where it is not the image's own name (None: the core only).
EXTRA_OF: dict[str, str | None] = {"training": "train", "streammux": None}
# Kubernetes Jobs: no metrics server, nothing to expose.
JOBS = {"engine", "training"}
# Not a pipeline service: no metrics server on metrics.port; it serves only kopf's /healthz.
OPERATOR = "operator"
BUILD_TOOLS = {
    "gcc", "g++", "cc", "clang", "make", "cmake", "ninja-build", "meson", "build-essential",
    "pkg-config", "pkgconf", "libc6-dev", "autoconf", "automake", "libtool",
}  # fmt: skip
KEYWORDS = frozenset(
    {
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
        "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME",
        "WORKDIR",
    }
)  # fmt: skip


# --- the parser ------------------------------------------------------------------------------


class DockerfileError(ValueError):
    """A Dockerfile these tests (or Docker) would not accept; the message names the line."""


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    value: str  # continuations joined
    line: int  # 1-based, the first line


@dataclass(frozen=True)
class Stage:
    base: str  # global ARGs substituted
    name: str | None
    instructions: tuple[Instruction, ...]

    def values(self, keyword: str) -> list[str]:
        return [i.value for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> int:
        """Index of the last `keyword` instruction; -1 when there is none."""
        found = [n for n, i in enumerate(self.instructions) if i.keyword == keyword]
        return found[-1] if found else -1

    def commands(self) -> list[list[str]]:
        """Every shell command of every RUN, as words (`&&`, `;`, `|` separate commands)."""
        return [c for run in self.values("RUN") for c in commands(run)]


@dataclass(frozen=True)
class Dockerfile:
    args: dict[str, str | None]  # ARGs before the first FROM, with their defaults
    stages: tuple[Stage, ...]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)


_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _substitute(text: str, args: dict[str, str | None], line: int) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in args:
            raise DockerfileError(f"line {line}: ${name} is not an ARG declared before FROM")
        default = args[name]
        if default is None:
            raise DockerfileError(f"line {line}: ARG {name} has no default: the base is unpinned")
        return default

    return _VARIABLE.sub(value, text)


def parse_dockerfile(text: str) -> Dockerfile:
    """Instructions grouped by stage, with the checks dockerfile-parse leaves out.

    dockerfile-parse drops an instruction whose continuation runs off the end, takes any word
    as an instruction (a heredoc's lines too: the images use none) and substitutes nothing it
    cannot resolve; each of those is a DockerfileError here.
    """
    if text.rstrip().endswith("\\"):
        raise DockerfileError("the last instruction ends in a line continuation")
    parser = DockerfileParser(fileobj=io.StringIO(text))
    args: dict[str, str | None] = {}
    stages: list[Stage] = []
    base = name = None
    body: list[Instruction] = []

    def close() -> None:
        if base is not None:
            stages.append(Stage(base, name, tuple(body)))

    for item in parser.structure:
        keyword, value, line = item["instruction"], item["value"].strip(), item["startline"] + 1
        if keyword == "COMMENT":
            continue
        if keyword not in KEYWORDS:
            raise DockerfileError(f"line {line}: unknown instruction {keyword!r}")
        if not value:
            raise DockerfileError(f"line {line}: {keyword} without arguments")
        if keyword == "FROM":
            close()
            words = [w for w in value.split() if not w.startswith("--")]  # --platform=...
            if len(words) == 3 and words[1].lower() == "as":
                image, name = words[0], words[2]
            elif len(words) == 1:
                image, name = words[0], None
            else:
                raise DockerfileError(f"line {line}: expected FROM IMAGE [AS NAME], got {value!r}")
            if name is not None and any(s.name == name for s in stages):
                raise DockerfileError(f"line {line}: a second stage named {name!r}")
            base, body = _substitute(image, args, line), []
        elif base is None:
            if keyword != "ARG":
                raise DockerfileError(f"line {line}: {keyword} before the first FROM")
            arg, sep, default = value.partition("=")
            args[arg.strip()] = default.strip().strip('"') if sep else None
        else:
            body.append(Instruction(keyword, value, line))
    close()
    if not stages:
        raise DockerfileError("no FROM: not a Dockerfile")
    return Dockerfile(args, tuple(stages))


def commands(script: str) -> list[list[str]]:
    """A RUN's shell commands as words: `&&`, `||`, `;`, `|` separate them, a redirection and
    its target are left out, and so are the RUN's own leading flags (--mount=...)."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    result: list[list[str]] = [[]]
    redirected = False
    for word in lexer:
        if redirected:
            redirected = False
        elif word and set(word) <= set("<>"):
            redirected = True
        elif word and set(word) <= set("&|;()"):
            result.append([])
        elif not (result == [[]] and word.startswith("--")):
            result[-1].append(word)
    return [c for c in result if c]


_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")


def program(command: list[str]) -> list[str]:
    """The command without its leading VAR=value assignments (DEBIAN_FRONTEND=... apt-get)."""
    n = 0
    while n < len(command) and _ASSIGNMENT.match(command[n]):
        n += 1
    return command[n:]


def apt_packages(stage: Stage) -> list[str]:
    """Packages the stage's `apt-get install` commands name (versions left off)."""
    packages: list[str] = []
    for command in stage.commands():
        words = program(command)
        if words[:1] in (["apt-get"], ["apt"]):
            rest = [w for w in words[1:] if not w.startswith("-")]
            if rest[:1] == ["install"]:
                packages += [w.split("=")[0] for w in rest[1:]]
    return packages


def exec_form(value: str) -> list[str]:
    """ENTRYPOINT/CMD in exec form (a JSON list of strings); the shell form is refused."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        raise DockerfileError(f"not the exec form (a JSON list): {value!r}") from e
    if not (isinstance(parsed, list) and parsed and all(isinstance(w, str) for w in parsed)):
        raise DockerfileError(f"not the exec form (a JSON list of strings): {value!r}")
    return parsed


_PINNED_TAG = re.compile(r"^(\d+\.\d+\.\d+|\d{2}\.\d{2})([-.+_]|$)")


def is_pinned(image: str) -> bool:
    """A digest, or a tag that names an exact release: 3.11.7-slim-bookworm, 25.06-py3."""
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return False  # untagged: latest
    return bool(_PINNED_TAG.match(last.split(":", 1)[1]))


def key_values(stage: Stage, keyword: str) -> dict[str, str]:
    """LABEL or ENV pairs, in the KEY=value form the images use (quotes removed)."""
    found: dict[str, str] = {}
    for value in stage.values(keyword):
        for word in shlex.split(value):
            key, sep, text = word.partition("=")
            if not sep:
                raise DockerfileError(f"{keyword} {value!r}: expected KEY=value pairs")
            found[key] = text
    return found


def stage_args(stage: Stage) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in stage.values("ARG"):
        key, _, default = value.partition("=")
        found[key] = shlex.split(default)[0] if default else ""
    return found


def pip_command(command: list[str], action: str) -> bool:
    return command[:4] == ["python3", "-m", "pip", action]


def extras(spec: str, project: str) -> set[str] | None:
    """`heron[a,b]` → {a, b} when spec names `project`; None when it names something else."""
    match = re.fullmatch(re.escape(project) + r"(?:\[([\w,\s-]*)\])?", spec)
    if match is None:
        return None
    return {e.strip() for e in (match.group(1) or "").split(",") if e.strip()}


# --- what the images are held against --------------------------------------------------------


def image_names() -> list[str]:
    return sorted(p.parent.name for p in IMAGES_DIR.glob("*/Dockerfile"))


@cache
def dockerfile(name: str) -> Dockerfile:
    return parse_dockerfile((IMAGES_DIR / name / "Dockerfile").read_text(encoding="utf-8"))


@cache
def pyproject() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


@cache
def makefile_variable(name: str) -> str:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{name}\s*[?:]?=\s*(.*)$", text, re.MULTILINE)
    assert match, f"the Makefile sets no {name}"
    return match.group(1).strip()


def entrypoint_module(name: str) -> str:
    return MODULE_OF.get(name, f"heron.{name}")


def source_dir(name: str) -> Path:
    return SOURCE_OF.get(name, SERVICES_DIR.parent)


def runnable_modules() -> set[str]:
    """`python -m` modules of the project: heron.<x> under services/, and any top-level package
    under operator/ (heron_operator), that have a __main__."""
    services = {f"heron.{p.parent.name}" for p in SERVICES_DIR.glob("*/__main__.py")}
    return services | {p.parent.name for p in OPERATOR_DIR.glob("*/__main__.py")}


def expected_extras(name: str) -> set[str]:
    extra = EXTRA_OF.get(name, name)
    return set() if extra is None else {extra}


def expected_ports(name: str) -> set[int]:
    """From the code's defaults: metrics for every service, then each one's own server."""
    if name in JOBS:
        return set()
    if name == OPERATOR:
        # kopf's /healthz: off by default (health_port None), on at the chart's healthPort.
        health = OperatorSettings.model_fields["health_port"]
        assert health.default is None, "the operator's code now has a health port default"
        return {int(chart_values()["operator"]["healthPort"])}
    ports = {int(MetricsSettings.model_fields["port"].default)}
    if name == "control":  # heron.v1 Pipeline and Detections
        ports.add(split_listen(str(PlanOptions.model_fields["grpc_listen"].default))[1])
    elif name == "inference":  # heron.v1 Detector
        ports.add(split_listen(str(PlanOptions.model_fields["detector_listen"].default))[1])
    elif name == "overlay":  # the RTSP sink
        ports.add(int(RtspSink.model_fields["rtsp_port"].default))
    return ports


IMAGES = image_names()


def test_there_are_images() -> None:
    assert IMAGES, f"no {IMAGES_DIR}/*/Dockerfile"


def test_every_service_has_an_image() -> None:
    """A new `python -m heron.<x>` service (or operator/<pkg>) cannot be forgotten: it needs an
    image or a reason."""
    runnable = runnable_modules()
    assert "heron_operator" in runnable, "operator/heron_operator has no __main__"
    assert set(NOT_IMAGES) <= runnable, "NOT_IMAGES names a package that has no __main__ now"
    assert set(MODULE_OF) <= set(IMAGES), "MODULE_OF names an image that has no Dockerfile"
    assert set(SOURCE_OF) <= set(MODULE_OF), "SOURCE_OF names an image with a heron.<x> module"
    modules = [entrypoint_module(n) for n in IMAGES]
    assert len(set(modules)) == len(modules), f"two images run the same module: {modules}"
    assert set(modules) == runnable - set(NOT_IMAGES)


@pytest.mark.parametrize("name", IMAGES)
def test_dockerfile_is_multi_stage(name: str) -> None:
    parsed = dockerfile(name)
    assert len(parsed.stages) >= 2
    assert parsed.stages[0].name == "builder"
    assert parsed.final.name is None, "the final stage is the image: no name needed"
    # The wheels are built by the same Python that installs them.
    assert parsed.stage("builder").base == parsed.final.base


@pytest.mark.parametrize("name", IMAGES)
def test_final_stage_base_is_pinned(name: str) -> None:
    base = dockerfile(name).final.base
    assert base not in {s.name for s in dockerfile(name).stages}, "FROM an image, not a stage"
    assert is_pinned(base), f"{name}: {base} is not an exact release (or a digest)"


def test_bases_match_the_project_pins() -> None:
    python = makefile_variable("PYTHON").removeprefix("python")  # python3.11 → 3.11
    torch_pins = makefile_variable("TORCH_PINS")
    torch = re.search(r"\btorch==([\w.]+)", torch_pins)
    assert torch, torch_pins
    for name in IMAGES:
        base = dockerfile(name).final.base
        if name == "engine":
            assert re.fullmatch(r"nvcr\.io/nvidia/tensorrt:\d{2}\.\d{2}-py3", base), base
        elif name == "training":
            assert base.startswith(f"pytorch/pytorch:{torch.group(1)}-cuda"), base
            assert base.endswith("-runtime"), base
        else:
            assert base.startswith(f"python:{python}."), f"{name}: {base} is not Python {python}"
            assert base.endswith("-slim-bookworm"), base
    for name in ("engine", "training"):
        for stage in dockerfile(name).stages:
            assert stage_args(stage).get("TORCH_PINS") == torch_pins, (name, stage.name)
    weights = makefile_variable("WEIGHTS_PKG")
    assert stage_args(dockerfile("training").final)["WEIGHTS_PKG"] == weights


@pytest.mark.parametrize("name", IMAGES)
def test_runs_as_the_fixed_non_root_user(name: str) -> None:
    final = dockerfile(name).final
    users = final.values("USER")
    assert users == [f"{UID}:{GID}"], "one numeric USER (the chart's runAsUser/runAsGroup)"
    assert final.last("USER") > final.last("RUN"), "USER after the last RUN"
    created = [c for c in final.commands() if c[:1] in (["useradd"], ["groupadd"])]
    assert [c[0] for c in created] == ["groupadd", "useradd"]
    groupadd, useradd = created
    assert groupadd[groupadd.index("--gid") + 1] == str(GID)
    assert useradd[useradd.index("--uid") + 1] == str(UID)
    assert useradd[useradd.index("--gid") + 1] == str(GID)


def chart_values() -> dict[str, Any]:
    values_file = REPO / "charts" / "heron" / "values.yaml"
    if not values_file.is_file():
        pytest.skip("no charts/heron/values.yaml")
    values = yaml.safe_load(values_file.read_text(encoding="utf-8"))
    assert isinstance(values, dict)
    return values


def test_the_chart_runs_heron_pods_as_the_images_user() -> None:
    security = chart_values()["podSecurity"]
    assert security["runAsUser"] == UID
    assert security.get("runAsGroup", GID) == GID
    assert security.get("fsGroup", GID) == GID


def test_engine_tensorrt_is_the_chart_tritons() -> None:
    """A TensorRT plan runs only under the TensorRT that built it: same NGC release."""
    triton = chart_values().get("triton", {}).get("image", {})
    if not str(triton.get("repository", "")).endswith("/tritonserver"):
        pytest.skip("the chart names no Triton image")
    release = str(triton["tag"]).split("-")[0]
    assert dockerfile("engine").final.base == f"nvcr.io/nvidia/tensorrt:{release}-py3"


@pytest.mark.parametrize("name", IMAGES)
def test_entrypoint_runs_the_service_module(name: str) -> None:
    (entrypoint,) = dockerfile(name).final.values("ENTRYPOINT")
    module = entrypoint_module(name)
    assert exec_form(entrypoint) == ["python3", "-m", module]
    spec = importlib.util.find_spec(module)
    assert spec is not None
    assert importlib.util.find_spec(f"{module}.__main__") is not None, f"{module} has no __main__"
    assert spec.origin is not None
    assert Path(spec.origin).resolve().is_relative_to(source_dir(name)), (module, spec.origin)
    assert not dockerfile(name).final.values("CMD"), "arguments come from the pod spec"


@pytest.mark.parametrize("name", IMAGES)
def test_build_time_imports_exist(name: str) -> None:
    """The `python3 -c` checks the final stage runs import modules that exist."""
    checked: list[str] = []
    for command in dockerfile(name).final.commands():
        if command[:2] == ["python3", "-c"]:
            for node in ast.walk(ast.parse(command[2])):
                if isinstance(node, ast.Import):
                    checked += [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    checked.append(node.module)
    project = {"heron"} | {p.parent.name for p in OPERATOR_DIR.glob("*/__init__.py")}
    ours = [m for m in checked if m.split(".")[0] in project]
    module = entrypoint_module(name)
    assert any(m.startswith(f"{module}.") for m in ours), f"no {module} import: {checked}"
    for module in ours:
        assert importlib.util.find_spec(module) is not None, module


@pytest.mark.parametrize("name", IMAGES)
def test_extras_match_pyproject(name: str) -> None:
    expected = expected_extras(name)
    assert expected <= set(pyproject()["project"]["optional-dependencies"]), expected
    parsed = dockerfile(name)

    built = []
    for command in parsed.stage("builder").commands():
        if pip_command(command, "wheel") or command[:2] == ["sh", "images/wheels.sh"]:
            built += [e for w in command if (e := extras(w, ".")) is not None]
    assert built == [expected], f"builder: wheels of .{sorted(built)}, expected {expected}"

    installs = [c for c in parsed.final.commands() if pip_command(c, "install")]
    installed = [e for c in installs for w in c if (e := extras(w, "heron")) is not None]
    assert installed == [expected], f"final stage installs heron{installed}, expected {expected}"
    for command in installs:
        assert "--no-index" in command, command
        assert command[command.index("--find-links") + 1] == "/wheels", command
    runs = [run for run in parsed.final.values("RUN") if "pip install" in run]
    assert all("--mount=type=bind,from=builder,source=/wheels,target=/wheels" in r for r in runs)


@pytest.mark.parametrize("name", IMAGES)
def test_no_build_tools_in_the_final_stage(name: str) -> None:
    final = dockerfile(name).final
    packages = apt_packages(final)
    tools = [p for p in packages if p in BUILD_TOOLS or p.endswith("-dev")]
    assert not tools, f"build tools in the final stage: {tools}"
    installs = [c for c in map(program, final.commands()) if c[:2] == ["apt-get", "install"]]
    assert bool(installs) == bool(packages)
    for command in installs:
        assert "--no-install-recommends" in command, command
    if packages:
        assert any(c[:3] == ["rm", "-rf", "/var/lib/apt/lists/*"] for c in final.commands())
    for command in final.commands():
        if pip_command(command, "install"):
            assert not {"setuptools", "wheel", "meson", "ninja"} & set(command), command


@pytest.mark.parametrize("name", IMAGES)
def test_exposed_ports(name: str) -> None:
    exposed = {
        int(p.split("/")[0]) for v in dockerfile(name).final.values("EXPOSE") for p in v.split()
    }
    assert exposed == expected_ports(name)


@pytest.mark.parametrize("name", IMAGES)
def test_oci_labels(name: str) -> None:
    final = dockerfile(name).final
    found = key_values(final, "LABEL")
    assert found["org.opencontainers.image.title"] == f"heron-{name}"
    assert found["org.opencontainers.image.source"] == SOURCE
    assert found["org.opencontainers.image.version"] == "${VERSION}"
    assert found["org.opencontainers.image.revision"] == "${REVISION}"
    assert found["org.opencontainers.image.licenses"] == pyproject()["project"]["license"]["text"]
    assert found["org.opencontainers.image.description"]
    assert stage_args(final)["VERSION"] == pyproject()["project"]["version"]


@pytest.mark.parametrize("name", IMAGES)
def test_writes_only_to_tmp(name: str) -> None:
    """The chart mounts the root filesystem read-only, with an emptyDir at /tmp."""
    env = key_values(dockerfile(name).final, "ENV")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == "/home/heron"
    assert env["XDG_CACHE_HOME"].startswith("/tmp/")
    assert env["MPLCONFIGDIR"].startswith("/tmp/")
    for key in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        assert env.get(key, "/tmp/").startswith("/tmp/"), (key, env[key])


def _script_array(text: str, name: str) -> list[str]:
    match = re.search(rf"^{name}=\((.*?)^\)", text, re.MULTILINE | re.DOTALL)
    assert match, f"no {name}=( ... ) in the script"
    return [
        line.split("#")[0].strip()
        for line in match.group(1).splitlines()
        if line.split("#")[0].strip()
    ]


def test_overlay_installs_what_the_gstreamer_script_does() -> None:
    """images/overlay and scripts/install-gstreamer.sh give the RTSP sink the same stack."""
    script = (REPO / "scripts" / "install-gstreamer.sh").read_text(encoding="utf-8")
    wanted = _script_array(script, "APT_PACKAGES")
    build = {p for p in wanted if p.endswith("-dev") or p in BUILD_TOOLS}
    pip_spec = re.search(r"^PIP_PACKAGE='([^']+)'", script, re.MULTILINE)
    assert pip_spec
    overlay = dockerfile("overlay")
    builder, final = overlay.stage("builder"), overlay.final
    assert set(wanted) - build <= set(apt_packages(final))
    assert build <= set(apt_packages(builder))
    for stage, action in ((builder, "wheel"), (final, "install")):
        specs = [w for c in stage.commands() if pip_command(c, action) for w in c]
        assert pip_spec.group(1) in specs, f"{stage.name or 'final'}: no {pip_spec.group(1)}"


def test_dockerignore_keeps_what_the_images_copy() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "the context is an allow-list"
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for name in IMAGES:
        for stage in dockerfile(name).stages:
            for value in stage.values("COPY"):
                words = [w for w in shlex.split(value) if not w.startswith("--")]
                if any(w.startswith("--from") for w in shlex.split(value)):
                    continue
                for source in words[:-1]:
                    assert source.rstrip("/") in kept, f"{name}: COPY {source} is ignored"
                    assert (REPO / source).exists(), f"{name}: COPY {source}: no such path"


def test_wheels_script_is_valid_shell() -> None:
    result = subprocess.run(
        ["sh", "-n", str(IMAGES_DIR / "wheels.sh")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def _make(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if k not in {"IMAGES", "REGISTRY", "TAG"}}
    env.pop("MAKEFLAGS", None)
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", *args, "IMAGE_REVISION=r0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_images_builds_every_image() -> None:
    out = _make("images", "REGISTRY=registry.test/team", "TAG=t1")
    builds = [shlex.split(cmd) for cmd in out.replace("\\\n", " ").splitlines() if cmd.strip()]
    built = {}
    for words in builds:
        assert words[:3] == ["docker", "buildx", "build"], words
        built[words[words.index("-f") + 1]] = words[words.index("-t") + 1]
        assert words[-1] == ".", "built from the repository root"
        assert f"VERSION={pyproject()['project']['version']}" in words
    assert built == {f"images/{n}/Dockerfile": f"registry.test/team/heron-{n}:t1" for n in IMAGES}


def test_make_push_images_pushes_every_image() -> None:
    out = _make("push-images", "TAG=t2")
    pushed = out.splitlines()
    assert sorted(pushed) == [f"docker push ghcr.io/heron-project/heron-{n}:t2" for n in IMAGES]


def test_tag_defaults_to_the_package_version() -> None:
    version = pyproject()["project"]["version"]
    out = _make("image-control")
    assert f" ghcr.io/heron-project/heron-control:{version} " in out.replace("\\\n", " ")


# --- the helpers on bad input ----------------------------------------------------------------

GOOD = "ARG BASE=python:3.11.7-slim\nFROM ${BASE} AS builder\nRUN echo hi\nFROM $BASE\nUSER 1:1\n"


def test_parser_reads_stages_and_substitutes_args() -> None:
    parsed = parse_dockerfile(GOOD)
    assert parsed.args == {"BASE": "python:3.11.7-slim"}
    assert [(s.base, s.name) for s in parsed.stages] == [
        ("python:3.11.7-slim", "builder"),
        ("python:3.11.7-slim", None),
    ]
    assert parsed.final.values("USER") == ["1:1"]
    assert parsed.stage("builder").instructions == (Instruction("RUN", "echo hi", 3),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no FROM"),
        ("# only a comment\n", "no FROM"),
        ("FORM python:3.11.7\n", "line 1: unknown instruction 'FORM'"),
        ("FROM python:3.11.7\npip install x\n", "line 2: unknown instruction 'PIP'"),
        ("FROM python:3.11.7\nRUN echo \\\n", "ends in a line continuation"),
        ("FROM python:3.11.7\nRUN <<EOF\necho\nEOF\n", "line 3: unknown instruction 'ECHO'"),
        ("FROM python:3.11.7\nRUN\n", "line 2: RUN without arguments"),
        ("ENV A=1\nFROM python:3.11.7\n", "line 1: ENV before the first FROM"),
        ("FROM a b c\n", "expected FROM IMAGE [AS NAME]"),
        ("FROM ${BASE}\n", "$BASE is not an ARG declared before FROM"),
        ("ARG BASE\nFROM ${BASE}\n", "ARG BASE has no default"),
        ("FROM a:1.2.3 AS b\nFROM a:1.2.3 AS b\n", "line 2: a second stage named 'b'"),
    ],
)
def test_parser_refuses(text: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=re.escape(message)):
        parse_dockerfile(text)


@pytest.mark.parametrize(
    "value",
    ["python3 -m heron.ingest", '["python3", 3]', "[]", '{"a": 1}', '["python3", "-m"'],
)
def test_exec_form_refuses(value: str) -> None:
    with pytest.raises(DockerfileError, match="exec form"):
        exec_form(value)


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("python:3.11.7-slim-bookworm", True),
        ("nvcr.io/nvidia/tensorrt:25.06-py3", True),
        ("pytorch/pytorch:2.14.1-cuda13.0-cudnn9-runtime", True),
        ("python@sha256:" + "a" * 64, True),
        ("python:3.11.7-slim@sha256:" + "0" * 64, True),
        ("python", False),
        ("python:latest", False),
        ("python:3.11-slim", False),
        ("python:3-slim", False),
        ("python:slim", False),
        ("localhost:5000/python", False),
    ],
)
def test_is_pinned(image: str, pinned: bool) -> None:
    assert is_pinned(image) is pinned


def test_commands_and_apt_packages() -> None:
    stage = Stage(
        "x",
        None,
        (
            Instruction(
                "RUN",
                "--mount=type=cache,target=/c apt-get update && DEBIAN_FRONTEND=noninteractive "
                "apt-get install -y --no-install-recommends a b=1.2 c; "
                'python3 -c "import x; print(1)" | tee log && printf %s 1 >/tmp/f',
                1,
            ),
        ),
    )
    assert stage.commands() == [
        ["apt-get", "update"],
        ["DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "--no-install-recommends",
         "a", "b=1.2", "c"],
        ["python3", "-c", "import x; print(1)"],
        ["tee", "log"],
        ["printf", "%s", "1"],
    ]  # fmt: skip
    assert apt_packages(stage) == ["a", "b", "c"]


def test_extras_spec() -> None:
    assert extras("heron[a, b]", "heron") == {"a", "b"}
    assert extras("heron", "heron") == set()
    assert extras(".[train]", ".") == {"train"}
    assert extras("heron-x[a]", "heron") is None
    assert extras("PyGObject<3.51", "heron") is None


def test_key_values() -> None:
    stage = Stage("x", None, (Instruction("ENV", 'A=1 B="two words"', 1),))
    assert key_values(stage, "ENV") == {"A": "1", "B": "two words"}
    legacy = Stage("x", None, (Instruction("ENV", "A 1", 1),))
    with pytest.raises(DockerfileError, match="KEY=value"):
        key_values(legacy, "ENV")
