"""Benchmark: unpruned FP32 → pruned FP32 → pruned INT8 (PTQ and QAT), chosen on `select`,
reported on `gate` (issue 18's chain; the GPU half is bench/gpu/prune_qat.py).

    .venv/bin/python bench/int8_chain.py --work WORK     # WORK: prune_qat.py's models

For every model prune_qat.py left in WORK (`<name>/retrain/model.pt`, `<name>/qat/model.pt`)
and the committed unpruned model: export ONNX (`heron export`; a QAT checkpoint exports as the
TensorRT Q/DQ model, plus its uint8-activation CPU form), score per-class AP on the held-out
`select` and `gate` halves (heron.evaluation.roles), count parameters and FLOPs at 960×544 and
time ONNX Runtime on this CPU (batch 1, 2 threads, median). Then the choice, made on `select`
only: the largest pth whose retrained FP32 mAP is within --max-drop of the unpruned model's and
whose FLOPs are at least --min-flops-ratio fewer. For the chosen model, PTQ (`heron calibrate
--method auto`, searching on `select`) is run too, so both INT8 routes are compared on `gate`.
Writes --out (JSON) and prints the tables.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from int8 import TRAINED_CLASS_MAP, calibration_folder, cpu_name, kitti_folder, latency_ms, roles

REPO = Path(__file__).resolve().parents[1]
UNPRUNED = REPO / "models" / "facemask" / "model.pt"


def export(checkpoint: Path, folder: Path) -> dict[str, Path]:
    """ONNX forms of `checkpoint`: fp32, or (QAT) the TensorRT Q/DQ and the CPU U8S8 forms."""
    from heron.training.export import export_onnx

    folder.mkdir(parents=True, exist_ok=True)
    report = export_onnx(checkpoint, folder / "model.onnx")  # a QAT model: both INT8 forms
    if report.cpu_form is None:
        return {"fp32": report.onnx}
    return {"qat_s8s8": report.onnx, "qat_u8s8": report.cpu_form}


def cost(checkpoint: Path) -> dict[str, int]:
    from heron.training.prune.layout import load_pruned
    from heron.training.prune.pruner import measure

    model, settings = load_pruned(checkpoint)
    c = measure(model.eval(), settings.model.input_width, settings.model.input_height)
    return {"parameters": c.parameters, "flops": 2 * c.macs}


def score(model: Path, select: Path, gate: Path) -> dict[str, Any]:
    from heron.engine.accuracy import evaluate_ap

    out: dict[str, Any] = {}
    for role, data in (("select", select), ("gate", gate)):
        ap, mean = evaluate_ap(model, data)
        out[role] = {"ap": {k: round(v, 2) for k, v in ap.items()}, "mAP": round(mean, 2)}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--max-drop", type=float, default=1.0, help="FP32 mAP points, on select")
    p.add_argument("--min-flops-ratio", type=float, default=1.5)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--no-ptq", action="store_true", help="skip PTQ of the chosen model")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "int8_chain.json")
    args = p.parse_args()
    split = roles()
    models = {"unpruned": {"fp32": UNPRUNED}}
    for record in sorted(args.work.glob("*/record.json")):
        name = record.parent.name
        forms = {"fp32": record.parent / "retrain" / "model.pt"} if name != "unpruned" else {}
        forms["qat"] = record.parent / "qat" / "model.pt"
        models.setdefault(name, {}).update({k: v for k, v in forms.items() if v.is_file()})
    gpu = {r.parent.name: json.loads(r.read_text()) for r in args.work.glob("*/record.json")}
    with tempfile.TemporaryDirectory(prefix="heron-chain-") as tmp:
        root = Path(tmp)
        select = kitti_folder(root, "select", split.select.names, TRAINED_CLASS_MAP)
        gate = kitti_folder(root, "gate", split.gate.names, TRAINED_CLASS_MAP)
        rows: dict[str, dict[str, Any]] = {}
        for name, forms in models.items():
            for kind, checkpoint in forms.items():
                for form, onnx in export(checkpoint, root / name / kind).items():
                    key = f"{name}/{form}"
                    rows[key] = {
                        "model": name,
                        "form": form,
                        **cost(checkpoint),
                        **score(onnx, select, gate),
                        "cpu_ms_bs1": round(latency_ms(onnx, args.runs), 1),
                        "onnx": str(onnx),
                    }
                    print(key, json.dumps(rows[key]), flush=True)
        chosen = choose(rows, args)
        ptq = (
            None
            if args.no_ptq or chosen is None
            else run_ptq(rows, chosen, split, root, select=select, gate=gate)
        )
        for row in rows.values():
            row.pop("onnx")
        result = {
            "date": datetime.date.today().isoformat(),
            "machine": f"{cpu_name()}, {os.cpu_count()} cores, 2 ORT threads",
            "load_average_1m": os.getloadavg()[0],
            "image_sets": [s.fingerprint() for s in (split.train, split.select, split.gate)],
            "rule": f"largest pth: FP32 select mAP drop <= {args.max_drop}, FLOPs ratio >= "
            f"{args.min_flops_ratio}",
            "chosen": chosen,
            "rows": rows,
            "ptq": ptq,
            "gpu": gpu,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    return 0


def choose(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> str | None:
    """The largest pth within the drop and FLOPs rules, judged on select only."""
    base = rows["unpruned/fp32"]
    fits = []
    for row in rows.values():
        if row["form"] != "fp32" or not row["model"].startswith("pth_"):
            continue
        drop = base["select"]["mAP"] - row["select"]["mAP"]
        ratio = base["flops"] / row["flops"]
        row["select_drop_vs_unpruned"] = round(drop, 2)
        row["flops_ratio"] = round(ratio, 3)
        if drop <= args.max_drop and ratio >= args.min_flops_ratio:
            fits.append((float(row["model"].removeprefix("pth_")), row["model"]))
    return max(fits)[1] if fits else None


def run_ptq(
    rows: dict[str, dict[str, Any]],
    chosen: str,
    split: Any,
    root: Path,
    *,
    select: Path,
    gate: Path,
) -> dict[str, Any]:
    """`heron calibrate --method auto` on the chosen model: what PTQ gives beside QAT."""
    from heron.engine.options import CalibrationOptions
    from heron.engine.pipeline import calibrate_and_compare

    fp32 = Path(rows[f"{chosen}/fp32"]["onnx"])
    options = CalibrationOptions(
        images=calibration_folder(root, split.train.names, None), select_data=select
    )
    started = time.perf_counter()
    outcome = calibrate_and_compare(fp32, root / "ptq", options, gate)
    c = outcome.calibration
    return {
        "model": chosen,
        "method": c.recipe.label,
        "calibrate_s": round(time.perf_counter() - started, 1),
        "search_on_select": c.search.to_dict() if c.search else None,
        "accuracy_on_gate": [r.to_dict() for r in outcome.reports],
        "cpu_ms_bs1": {
            "u8s8": round(latency_ms(c.cpu_model, 20), 1),
            "s8s8": round(latency_ms(c.qdq_model, 20), 1),
        },
    }


if __name__ == "__main__":
    sys.exit(main())
