"""Strict schema validation of Kubernetes objects, offline, reporting every error.

The schemas are the ones `kubernetes-validate` (1.37) bundles for Kubernetes 1.25–1.37, one
`_definitions.json` (JSON Schema 2020-12, `$defs` per OpenAPI type) per minor version. Its own
`validate` stops at the first error, so this module drives those definitions with `jsonschema`
directly, made strict the way `kubectl apply --validate=strict` is: every schema node with
`properties` gets `additionalProperties: false`, so an unknown field (a typo) is an error at
any depth. `$ref`s resolve through a `referencing.Registry` holding the definitions file.

    errors = validate(obj, "1.33")          # [] when valid; else ["spec.replicas: ...", ...]

A built-in object is looked up by its `x-kubernetes-group-version-kind`, so a group/version the
version no longer serves (policy/v1beta1 PodDisruptionBudget on 1.33) is reported as an error.
Any other apiVersion is a custom resource: `UnknownKindError` unless `crd_schemas` maps its
(apiVersion, kind) to the CRD's `openAPIV3Schema`, which `openapi-schema-validator` checks
(OpenAPI 3.0: `nullable`, formats), strict likewise except under
`x-kubernetes-preserve-unknown-fields`; its `metadata` is checked as an ObjectMeta. CEL rules
(`x-kubernetes-validations`) are not evaluated. `crd_schemas_from_crds` builds the mapping from
CustomResourceDefinition objects (as `helm template --include-crds` renders them).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jsonschema
from referencing import Registry, Resource

__all__ = [
    "GroupVersionKind",
    "UnknownKindError",
    "UnsupportedVersionError",
    "crd_schemas_from_crds",
    "supported_versions",
    "validate",
]

GroupVersionKind = tuple[str, str]  # (apiVersion as written in objects, kind)
DEFINITIONS_URI = "https://kubernetes.io/api/_definitions.json"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# Groups once built in whose every version is gone before 1.25 (the oldest bundled schema):
# their objects are reported as not served, never taken for custom resources.
_REMOVED_GROUPS = frozenset({"extensions"})
_SCHEMA_DIR = re.compile(r"^v(\d+)\.(\d+)\.\d+-local$")
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class UnknownKindError(LookupError):
    """The object is a custom resource (or unknown kind) and no schema for it was given."""


class UnsupportedVersionError(ValueError):
    """No schema is bundled for that Kubernetes version."""


def supported_versions() -> list[str]:
    """The Kubernetes minor versions with bundled schemas, oldest first ("1.25", … "1.37")."""
    return [f"{major}.{minor}" for major, minor in sorted(_schema_dirs())]


def validate(
    obj: Mapping[str, Any],
    kube_version: str,
    *,
    crd_schemas: Mapping[GroupVersionKind, Mapping[str, Any]] | None = None,
) -> list[str]:
    """Every error of `obj` against the schema of Kubernetes `kube_version` ("1.33", "v1.33.0").

    Each error reads "path: message", the path in kubectl's style
    (`spec.template.spec.containers[0].foo`, `(root)` for the object itself). Raises
    UnknownKindError for a custom resource whose (apiVersion, kind) is not in `crd_schemas`,
    UnsupportedVersionError for a version without bundled schemas.
    """
    bundle = _bundle(_minor_version(kube_version))
    instance = _plain(obj)
    if not isinstance(instance, dict):
        return [f"(root): expected an object, got {_json_type(instance)}"]
    api_version, kind = instance.get("apiVersion"), instance.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
        return ["(root): apiVersion and kind must be non-empty strings"]
    gvk = (api_version, kind)
    if crd_schemas is not None and gvk in crd_schemas:
        return _validate_custom(instance, crd_schemas[gvk], bundle)
    definition = bundle.kinds.get(gvk)
    if definition is not None:
        return _errors(bundle.validator(definition), instance, ())
    group = api_version.rpartition("/")[0]
    if group in bundle.groups or group in _REMOVED_GROUPS:
        return [
            f"(root): {api_version} {kind} is not served by Kubernetes {bundle.version}"
            " (removed, not yet added, or misspelt)"
        ]
    known = ", ".join(f"{v} {k}" for v, k in sorted(crd_schemas or {})) or "none"
    raise UnknownKindError(
        f"{api_version} {kind} is not a built-in kind of Kubernetes {bundle.version}: it is a"
        f" custom resource; pass its CRD's openAPIV3Schema as"
        f" crd_schemas={{({api_version!r}, {kind!r}): schema}} (given: {known})"
    )


def crd_schemas_from_crds(
    crds: Iterable[Mapping[str, Any]],
) -> dict[GroupVersionKind, dict[str, Any]]:
    """(apiVersion, kind) → openAPIV3Schema of every version of every CustomResourceDefinition
    in `crds` (other objects are skipped), for `validate(..., crd_schemas=...)`."""
    schemas: dict[GroupVersionKind, dict[str, Any]] = {}
    for crd in crds:
        if crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd.get("spec") or {}
        group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
        for version in spec.get("versions") or ():
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if group and kind and schema is not None:
                schemas[(f"{group}/{version['name']}", kind)] = _plain(schema)
    return schemas


# --- the bundled built-in schemas ---------------------------------------------------------------


@dataclass(eq=False)
class _Bundle:
    version: str  # "1.33"
    registry: Registry[Any]
    kinds: dict[GroupVersionKind, str]  # → name in $defs
    groups: frozenset[str]  # API groups this version serves ("" for the core group)
    validators: dict[str, jsonschema.protocols.Validator] = field(default_factory=dict)

    def validator(self, definition: str) -> jsonschema.protocols.Validator:
        """A validator of the named $defs entry (kept: the registry caches resolved $refs)."""
        if definition not in self.validators:
            schema = {"$ref": f"{DEFINITIONS_URI}#/$defs/{definition}"}
            self.validators[definition] = jsonschema.Draft202012Validator(
                schema, registry=self.registry
            )
        return self.validators[definition]


def _schema_dirs() -> dict[tuple[int, int], str]:
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    dirs: dict[tuple[int, int], str] = {}
    for entry in root.iterdir():
        match = _SCHEMA_DIR.match(entry.name)
        if match:
            dirs[(int(match[1]), int(match[2]))] = entry.name
    return dirs


def _minor_version(kube_version: str) -> tuple[int, int]:
    match = _VERSION.match(kube_version.strip())
    dirs = _schema_dirs()
    if match is None or (int(match[1]), int(match[2])) not in dirs:
        raise UnsupportedVersionError(
            f"no bundled Kubernetes schema for version {kube_version!r}:"
            f" supported are {', '.join(supported_versions())}"
        )
    return int(match[1]), int(match[2])


@functools.cache
def _bundle(version: tuple[int, int]) -> _Bundle:
    path = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    path = path / _schema_dirs()[version] / "_definitions.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    definitions: dict[str, Any] = document["$defs"]
    for schema in definitions.values():
        _strictify(schema)
    kinds: dict[GroupVersionKind, str] = {}
    # Kinds such as DeleteOptions or WatchEvent list one entry per group; the real type of a
    # kind lists only itself, so single-entry definitions win.
    for name, schema in sorted(
        definitions.items(), key=lambda d: len(d[1].get("x-kubernetes-group-version-kind", ()))
    ):
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            kinds.setdefault((api_version, gvk["kind"]), name)
    groups = frozenset(v.rpartition("/")[0] for v, _ in kinds)
    resource: Resource[Any] = Resource.from_contents(document)
    registry: Registry[Any] = Registry().with_resource(DEFINITIONS_URI, resource)
    return _Bundle(f"{version[0]}.{version[1]}", registry, kinds, groups)


def _strictify(schema: Any) -> None:
    """additionalProperties: false on every schema node with properties (in place), walking
    the schema keywords only: a field may itself be called "properties" or "items"."""
    if not isinstance(schema, dict):
        return
    if "properties" in schema:
        schema.setdefault("additionalProperties", False)
        for sub in schema["properties"].values():
            _strictify(sub)
    for keyword in ("items", "additionalProperties", "not"):
        _strictify(schema.get(keyword))
    for keyword in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(keyword, ()):
            _strictify(sub)


# --- custom resources ---------------------------------------------------------------------------


def _validate_custom(
    instance: dict[str, Any], crd_schema: Mapping[str, Any], bundle: _Bundle
) -> list[str]:
    from openapi_schema_validator import OAS30Validator, oas30_format_checker

    schema = _strict_crd(_plain(crd_schema), strict=True)
    properties = schema.setdefault("properties", {})
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    properties.setdefault("metadata", {"type": "object"})
    schema.setdefault("additionalProperties", False)
    validator = OAS30Validator(schema, format_checker=oas30_format_checker)
    errors = _errors(validator, instance, ())
    if isinstance(instance.get("metadata"), dict):
        errors += _errors(bundle.validator(OBJECT_META), instance["metadata"], ("metadata",))
    return sorted(set(errors))


def _strict_crd(schema: Any, *, strict: bool) -> Any:
    """A copy of a CRD's structural schema as the API server reads it: unknown fields are errors
    unless x-kubernetes-preserve-unknown-fields; x-kubernetes-int-or-string becomes anyOf."""
    if not isinstance(schema, dict):
        return schema
    node = dict(schema)
    if node.get("x-kubernetes-int-or-string"):
        node.pop("type", None)
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("x-kubernetes-embedded-resource"):
        embedded = node.setdefault("properties", {})
        for field in ("apiVersion", "kind"):
            embedded.setdefault(field, {"type": "string"})
        embedded.setdefault("metadata", {"type": "object"})
    if "properties" in node:
        node["properties"] = {
            name: _strict_crd(sub, strict=True) for name, sub in node["properties"].items()
        }
        if strict and not node.get("x-kubernetes-preserve-unknown-fields"):
            node.setdefault("additionalProperties", False)
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _strict_crd(node["additionalProperties"], strict=True)
    if "items" in node:
        node["items"] = _strict_crd(node["items"], strict=True)
    # Branches of junctors may name only some of the fields the node itself declares.
    for junctor in ("allOf", "anyOf", "oneOf"):
        if junctor in node:
            node[junctor] = [_strict_crd(sub, strict=False) for sub in node[junctor]]
    if "not" in node:
        node["not"] = _strict_crd(node["not"], strict=False)
    return node


# --- errors -------------------------------------------------------------------------------------


def _errors(
    validator: jsonschema.protocols.Validator, instance: Any, prefix: Sequence[str | int]
) -> list[str]:
    messages: set[str] = set()
    for error in validator.iter_errors(instance):
        messages.update(_describe(error, (*prefix, *error.absolute_path)))
    return sorted(messages)


def _describe(error: jsonschema.ValidationError, path: Sequence[str | int]) -> Iterator[str]:
    instance, schema = error.instance, error.schema
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        declared = schema.get("properties", {}) if isinstance(schema, dict) else {}
        patterns = list(schema.get("patternProperties", {})) if isinstance(schema, dict) else []
        for name in instance:
            if name not in declared and not any(re.search(p, name) for p in patterns):
                yield f"{_path((*path, name))}: unknown field"
    elif error.validator == "required" and isinstance(instance, dict):
        required: Any = error.validator_value
        for name in required:
            if name not in instance:
                yield f"{_path((*path, name))}: required field is missing"
    elif error.validator == "type":
        expected: Any = error.validator_value
        types = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(t for t in types if t != "null") or "null"
        yield f"{_path(path)}: expected {wanted}, got {_json_type(instance)} {_short(instance)}"
    elif error.validator in ("oneOf", "anyOf"):
        if instance is None:  # IntOrString and Quantity take null in both branches
            return
        branches = error.context or []
        if branches and all(sub.validator == "type" for sub in branches):
            wanted = " or ".join(sorted({t for sub in branches for t in _types(sub)} - {"null"}))
            got = f"{_json_type(instance)} {_short(instance)}"
            yield f"{_path(path)}: expected {wanted}, got {got}"
        else:
            yield f"{_path(path)}: {error.message}"
    else:
        yield f"{_path(path)}: {error.message}"


def _types(error: jsonschema.ValidationError) -> list[str]:
    value: Any = error.validator_value
    return [value] if isinstance(value, str) else [str(t) for t in value]


def _path(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text or "(root)"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _plain(value: Any) -> Any:
    """Plain dicts and lists (jsonschema's "object" and "array" are exactly dict and list)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return copy.copy(value)
