"""Key-file groups to raw field dicts: DeepStream key names → model field names, with lines.

Unknown keys become warnings naming the closest valid key; keys that belong to another kind of
the same group (a `uri` in a camera source) become warnings saying they do not apply.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from pydantic import BaseModel

from heron.core.config.diagnostics import Diagnostics, unknown_name_message
from heron.core.config.keyfile import Group
from heron.core.config.validation import Locator


def ds_keys(model: type[BaseModel], exclude: Collection[str] = ()) -> dict[str, str]:
    """DeepStream key → field name: kebab-case of the field, or its `ds_key`."""
    table: dict[str, str] = {}
    for name, info in model.model_fields.items():
        if name in exclude:
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        key = extra.get("ds_key")
        table[key if isinstance(key, str) else name.replace("_", "-")] = name
    return table


def read_group(
    group: Group,
    keys: Mapping[str, str],
    *,
    file: Path,
    prefix: str,
    locator: Locator,
    diags: Diagnostics,
    other_keys: Collection[str] = (),
    kind: str = "",
    aliases: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, str]:
    """The group's values by field name; records each key's line under `prefix.field`."""
    raw: dict[str, str] = {}
    locator.add(prefix, group.line, group.name)
    for entry in group.entries.values():
        key, where = entry.key, f"{group.name}.{entry.key}"
        if aliases and key in aliases:
            new_key, advice = aliases[key]
            diags.warn(file, entry.line, f"{key!r} is deprecated: {advice}", where)
            if new_key in group.entries:
                continue
            key = new_key
        name = keys.get(key)
        if name is None:
            if key in other_keys:
                diags.warn(
                    file, entry.line, f"key {key!r} does not apply to {kind}; it is ignored", where
                )
            else:
                diags.warn(file, entry.line, unknown_name_message("key", key, keys), where)
            continue
        raw[name] = entry.value
        locator.add(f"{prefix}.{name}", entry.line, where)
    return raw
