"""The "restricted" Pod Security Standard as a checker of pod specs, written from its rules
(https://kubernetes.io/docs/concepts/security/pod-security-standards/, Kubernetes 1.29-1.33):
every baseline control, then restricted's own. What the API server's PodSecurity admission
(`pod-security.kubernetes.io/enforce: restricted` on a namespace) would refuse, checked offline:

    problems = restricted_violations(pod_spec, annotations)   # [] when the pod is admitted

Each problem names the container (or the pod) and the field, with what the standard allows and
what was found. `pods(objects)` yields the pod spec of every workload among rendered objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = ["pods", "restricted_violations"]

Json = Mapping[str, Any]

# Baseline "Capabilities": what a container may add.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip
# Restricted "Capabilities": drop ALL, add at most this.
RESTRICTED_ADD = frozenset({"NET_BIND_SERVICE"})
# Baseline "Sysctls": the safe set (the later ones since 1.27 and 1.29).
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
    }
)  # fmt: skip
# Baseline "SELinux": the types a pod may ask for.
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
# Restricted "Volume Types".
VOLUME_TYPES = frozenset(
    {
        "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
        "projected", "secret",
    }
)  # fmt: skip
SECCOMP_ALLOWED = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


def pods(objects: Sequence[Json]) -> Iterator[tuple[str, Json, Json]]:
    """(kind/name, pod spec, pod annotations) of every workload, CronJob and bare Pod."""
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in WORKLOADS:
            template = obj["spec"]["template"]
        elif obj["kind"] == "CronJob":
            template = obj["spec"]["jobTemplate"]["spec"]["template"]
        elif obj["kind"] == "Pod":
            template = obj
        else:
            continue
        yield name, template["spec"], (template.get("metadata") or {}).get("annotations") or {}


def restricted_violations(spec: Json, annotations: Json | None = None) -> list[str]:
    """Every way `spec` breaks the restricted standard (baseline included); [] when none."""
    pod = spec.get("securityContext") or {}
    containers = _containers(spec)
    problems = _host(spec) + _volumes(spec) + _sysctls(pod)
    problems += _apparmor_annotations(annotations or {})
    problems += _profiles("pod", pod)
    for where, c in containers:
        sc = c.get("securityContext") or {}
        problems += _profiles(where, sc)
        problems += _container(where, c, sc)
    problems += _non_root(pod, containers)
    problems += _seccomp(pod, containers)
    return problems


def _containers(spec: Json) -> list[tuple[str, Json]]:
    found = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            found.append((f"{key}[{c.get('name', '?')}]", c))
    return found


def _host(spec: Json) -> list[str]:
    """Baseline "Host Namespaces"."""
    return [
        f"pod: {key} must be false or unset, got {spec[key]!r}"
        for key in ("hostNetwork", "hostPID", "hostIPC")
        if spec.get(key)
    ]


def _volumes(spec: Json) -> list[str]:
    """Baseline "HostPath Volumes", restricted "Volume Types"."""
    problems = []
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if "hostPath" in kinds:
            problems.append(f"volume {volume.get('name')!r}: hostPath volumes are not allowed")
        elif not kinds <= VOLUME_TYPES:
            problems.append(
                f"volume {volume.get('name')!r}: type {sorted(kinds - VOLUME_TYPES)} is not one "
                f"of {sorted(VOLUME_TYPES)}"
            )
    return problems


def _sysctls(pod: Json) -> list[str]:
    """Baseline "Sysctls"."""
    return [
        f"pod: sysctl {s.get('name')!r} is not in the safe set"
        for s in pod.get("sysctls") or []
        if s.get("name") not in SAFE_SYSCTLS
    ]


def _apparmor_annotations(annotations: Json) -> list[str]:
    """Baseline "AppArmor" (the annotation form)."""
    return [
        f"annotation {key}: expected runtime/default or localhost/*, got {value!r}"
        for key, value in annotations.items()
        if key.startswith(APPARMOR_ANNOTATION)
        and value != "runtime/default"
        and not str(value).startswith("localhost/")
    ]


def _profiles(where: str, sc: Json) -> list[str]:
    """Baseline "HostProcess", "AppArmor", "SELinux", "Seccomp" (no Unconfined) of one
    securityContext (the pod's or a container's)."""
    problems = []
    if (sc.get("windowsOptions") or {}).get("hostProcess"):
        problems.append(f"{where}: windowsOptions.hostProcess must be false or unset")
    apparmor = (sc.get("appArmorProfile") or {}).get("type")
    if apparmor is not None and apparmor not in SECCOMP_ALLOWED:
        problems.append(f"{where}: appArmorProfile.type must be RuntimeDefault or Localhost")
    selinux = sc.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in SELINUX_TYPES:
        problems.append(f"{where}: seLinuxOptions.type {selinux.get('type')!r} is not allowed")
    for key in ("user", "role"):
        if selinux.get(key):
            problems.append(f"{where}: seLinuxOptions.{key} must be unset")
    if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
        problems.append(f"{where}: seccompProfile.type must not be Unconfined")
    return problems


def _container(where: str, c: Json, sc: Json) -> list[str]:
    """Baseline "Privileged Containers", "Capabilities", "Host Ports", "/proc Mount Type";
    restricted "Privilege Escalation", "Capabilities"."""
    problems = []
    if sc.get("privileged"):
        problems.append(f"{where}: privileged must be false or unset")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(
            f"{where}: allowPrivilegeEscalation must be false, got "
            f"{sc.get('allowPrivilegeEscalation')!r}"
        )
    capabilities = sc.get("capabilities") or {}
    added = set(capabilities.get("add") or [])
    if added - BASELINE_CAPABILITIES:
        problems.append(f"{where}: capabilities.add {sorted(added)} goes beyond the baseline")
    elif added - RESTRICTED_ADD:
        problems.append(f"{where}: capabilities.add may hold only NET_BIND_SERVICE")
    if "ALL" not in (capabilities.get("drop") or []):
        problems.append(f"{where}: capabilities.drop must include ALL")
    if sc.get("procMount", "Default") != "Default":
        problems.append(f"{where}: procMount must be Default")
    for port in c.get("ports") or []:
        if port.get("hostPort"):
            problems.append(f"{where}: hostPort {port['hostPort']} is not allowed")
    return problems


def _non_root(pod: Json, containers: list[tuple[str, Json]]) -> list[str]:
    """Restricted "Running as Non-root" and "Running as Non-root user"."""
    problems = []
    if pod.get("runAsUser") == 0:
        problems.append("pod: runAsUser must not be 0")
    for where, c in containers:
        sc = c.get("securityContext") or {}
        if sc.get("runAsUser") == 0:
            problems.append(f"{where}: runAsUser must not be 0")
        if sc.get("runAsNonRoot") is False:
            problems.append(f"{where}: runAsNonRoot must not be false")
        elif pod.get("runAsNonRoot") is not True and sc.get("runAsNonRoot") is not True:
            problems.append(f"{where}: runAsNonRoot must be true (on the pod or the container)")
    return problems


def _seccomp(pod: Json, containers: list[tuple[str, Json]]) -> list[str]:
    """Restricted "Seccomp": RuntimeDefault or Localhost on the pod, or on every container."""
    on_pod = (pod.get("seccompProfile") or {}).get("type")
    problems = []
    for where, c in containers:
        own = ((c.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
        if own is None and on_pod in SECCOMP_ALLOWED:
            continue
        if own not in SECCOMP_ALLOWED:
            problems.append(
                f"{where}: seccompProfile.type must be RuntimeDefault or Localhost (on the pod "
                f"or the container), got {own or on_pod!r}"
            )
    return problems
