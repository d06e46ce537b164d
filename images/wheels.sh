#!/bin/sh
# images/wheels.sh REQUIREMENT [PIP OPTION...]
#
# The builder stage of the engine and training images (docs/images.md): wheels of REQUIREMENT
# (".[engine]", ".[train]") and of every dependency the builder's Python does not already have
# into $WHEEL_DIR (/wheels). Their bases ship torch or TensorRT: a plain `pip wheel` would
# download those again (gigabytes) only for the final stage to find them installed. The final
# stage installs from the folder with `pip install --no-index --find-links /wheels`.
# PIP OPTIONs (--constraint, --extra-index-url) apply to the plan and to every wheel.
set -eu

if [ "$#" -lt 1 ]; then
  echo "usage: $0 REQUIREMENT [PIP OPTION...]" >&2
  exit 2
fi
requirement="$1"
shift
wheel_dir="${WHEEL_DIR:-/wheels}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# What pip would install here, as name==version; the project itself is built separately.
python3 -m pip install --dry-run --quiet --report "$work/plan.json" "$@" "$requirement"
python3 - "$work/plan.json" >"$work/requirements.txt" <<'PY'
import json
import sys

with open(sys.argv[1], encoding="utf-8") as f:
    plan = json.load(f)
for item in plan["install"]:
    if "dir_info" in item.get("download_info", {}):
        continue  # the local project
    meta = item["metadata"]
    print(f"{meta['name']}=={meta['version']}")
PY
echo "wheels for $requirement:" $(cat "$work/requirements.txt")
python3 -m pip wheel --no-deps --wheel-dir "$wheel_dir" "$@" "${requirement%%\[*}"
if [ -s "$work/requirements.txt" ]; then
  python3 -m pip wheel --no-deps --wheel-dir "$wheel_dir" "$@" -r "$work/requirements.txt"
fi
