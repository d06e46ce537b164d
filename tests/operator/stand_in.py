"""Stand-ins for the engine commands the node agent cannot run here, with the same arguments.

    python stand_in.py gpu [--exit-code N] [--error TEXT] [--cc 8.6] -- heron build-engine ...
    python stand_in.py gate --drops '{"label": points, ...}' [--no-calibrate] -- heron calibrate ...

`gpu`: `heron build-engine --builder tensorrt` needs TensorRT on the GPU it builds for, which no
machine here has; the stand-in writes a placeholder plan where the real one would go and prints
the CLI's last line (or fails with `--error`).
`gate`: the real `heron calibrate` runs (Q/DQ models and calibration cache for the builds that
follow), without its accuracy part, which needs a trained DetectNet_v2 and a KITTI folder; the
report gets the given per-variant mAP drops, and the exit status is the CLI's: 1 when the worst
drop exceeds `--max-ap-drop`. `--no-calibrate` skips calibrating (when no build follows).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def gpu(options: argparse.Namespace, command: list[str]) -> int:
    if options.exit_code:
        print(options.error, file=sys.stderr)
        return int(options.exit_code)
    version = (
        Path(_option(command, "--output"))
        / _option(command, "--model-name")
        / _option(command, "--version")
    )
    plan = version / f"model_sm{options.cc.replace('.', '')}.plan"
    version.mkdir(parents=True, exist_ok=True)
    plan.write_bytes(b"stand-in plan\n")
    print(
        f"built {_option(command, '--precision')} tensorrt 10.11.0 plan (0.0 MB, 0.01 s) → {plan}"
    )
    return 0


def gate(options: argparse.Namespace, command: list[str]) -> int:
    report, limit = Path(_option(command, "--json")), float(_option(command, "--max-ap-drop"))
    keep = []
    skip = {"--eval-data", "--max-ap-drop", "--json"}
    args = iter(command)
    for arg in args:
        if arg in skip:
            next(args)
        else:
            keep.append(arg)
    code = subprocess.call(keep) if options.calibrate else 0
    if code:
        return code
    drops: dict[str, float] = json.loads(options.drops)
    accuracy = [{"label": label, "mAP_drop": drop} for label, drop in drops.items()]
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({"accuracy": accuracy}))
    worst = max(drops.values())
    if worst > limit:
        print(f"error: INT8 loses more than {limit:.2f} points of mAP", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    split = sys.argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("gpu", "gate"))
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--error", default="")
    parser.add_argument("--cc", default="8.6")
    parser.add_argument("--drops", default="{}")
    parser.add_argument("--no-calibrate", dest="calibrate", action="store_false")
    options = parser.parse_args(sys.argv[1:split])
    command = sys.argv[split + 1 :]
    return gpu(options, command) if options.kind == "gpu" else gate(options, command)


if __name__ == "__main__":
    sys.exit(main())
