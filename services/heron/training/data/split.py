"""Partition a KITTI folder into folds, as TAO's `dataset_convert` does (without TFRecords).

Two modes, TAO's:

- `random`: two folds. Fold 0 is validation (`val_split` percent of the images, rounded
  down), fold 1 training. TAO cuts its *sorted* image list (so validation is the first names
  alphabetically, which often means one camera or one day); Heron shuffles with `seed`
  first, so the cut is random and the same for the same seed.
- `sequence`: frames grouped by sequence (`kitti_seq_to_map.json`: sequence id -> frame
  names) so that no sequence spans two folds. Sequences are sorted longest first (ties by id)
  and dealt round-robin into `num_partitions` folds, then the fold order is reversed, exactly
  as TAO (and Rumpy before it) does, so fold numbers match TAO's.

Output (`write_partitions`): `OUT/fold-<i>.txt`, image paths relative to the KITTI root, one
per line, sorted; `OUT/partitions.json` with root, mode, seed and counts per fold and class.
A training spec's `tfrecords_path: "OUT/*"` with `validation_fold: 0` then reads them through
`read_partitions` / `training_datasets`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from heron.core.outputs import staged_folder
from heron.evaluation import roles
from heron.evaluation.errors import DataFormatError
from heron.evaluation.kitti import IMAGE_EXTENSIONS, KittiDataset, is_image, read_label_file

if TYPE_CHECKING:
    from heron.v1.tao.dataset_export_config_pb2 import KITTIConfig

PARTITIONS_FILE = "partitions.json"
FORMAT = "heron-partitions/1"


class SplitSettings(BaseModel):
    """How to partition one KITTI folder (the `kitti_config` of a dataset-convert spec)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: Path = Field(description="KITTI folder (TAO root_directory_path).")
    image_dir: str = Field("images", description="Image folder, relative to root.")
    label_dir: str = Field("labels", description="Label folder, relative to root.")
    image_extension: str | None = Field(
        None, description="Only images with this extension ('.jpg'); None: every image type."
    )
    partition_mode: Literal["random", "sequence"] = Field("random", description="TAO's modes.")
    num_partitions: int = Field(2, ge=1, description="Folds; random mode makes exactly 2.")
    val_split: float = Field(20.0, ge=0, lt=100, description="Percent of images in fold 0.")
    seed: int = Field(42, description="Shuffle seed of random mode (TAO fixes it at 42).")
    sequence_map: str = Field(
        "kitti_seq_to_map.json", description="Sequence -> frames JSON, relative to root."
    )

    @model_validator(mode="after")
    def _random_makes_two_folds(self) -> SplitSettings:
        if self.partition_mode == "random" and self.num_partitions != 2:
            raise ValueError(
                "random partition mode makes exactly 2 folds (0 validation, 1 training), "
                f"got num_partitions={self.num_partitions}"
            )
        return self


def settings_from_kitti_config(
    config: KITTIConfig, base_dir: Path, seed: int = 42
) -> SplitSettings:
    """SplitSettings from a dataset-convert spec's `kitti_config` (absent fields: TAO defaults).

    A relative `root_directory_path` is taken relative to `base_dir` (the spec's folder).
    `num_shards` is ignored: no TFRecords are written.
    """
    mode = config.partition_mode if config.HasField("partition_mode") else "random"
    partitions = config.num_partitions if config.HasField("num_partitions") else 0
    values: dict[str, Any] = {
        "root": base_dir / config.root_directory_path,
        "partition_mode": mode,
        "num_partitions": partitions or (2 if mode == "random" else 1),
        "seed": seed,
    }
    if config.HasField("image_dir_name"):
        values["image_dir"] = config.image_dir_name
    if config.HasField("label_dir_name"):
        values["label_dir"] = config.label_dir_name
    if config.HasField("image_extension"):
        values["image_extension"] = "." + config.image_extension.lstrip(".")
    if config.HasField("val_split"):
        values["val_split"] = config.val_split
    if config.HasField("kitti_sequence_to_frames_file"):
        values["sequence_map"] = config.kitti_sequence_to_frames_file
    return SplitSettings(**values)


def partition_random(names: Sequence[str], val_split: float, seed: int) -> list[list[str]]:
    """[validation, training]: floor(val_split% of n) names picked by a seeded shuffle. The cut
    lives in heron.evaluation.roles, which splits the held-out names into select and gate."""
    return roles.partition_random(names, val_split, seed)


def partition_sequence(
    sequences: Mapping[str, Sequence[str]], num_partitions: int
) -> list[list[str]]:
    """TAO's sequence partition: longest sequences first, dealt round-robin, folds reversed."""
    if num_partitions == 1:
        return [sorted(frame for frames in sequences.values() for frame in frames)]
    folds: list[list[str]] = [[] for _ in range(num_partitions)]
    ordered = sorted(sequences.items(), key=lambda item: (-len(item[1]), item[0]))
    for counter, (_, frames) in enumerate(ordered):
        folds[counter % num_partitions].extend(frames)
    return [sorted(fold) for fold in reversed(folds)]


def read_sequence_map(path: Path) -> dict[str, list[str]]:
    """The sequence -> frame names JSON; names may carry an image extension or not."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFormatError(
            path, 0, "sequence map does not exist (needed by sequence mode)"
        ) from None
    except json.JSONDecodeError as e:
        raise DataFormatError(path, e.lineno, f"invalid JSON: {e.msg}") from None
    if not isinstance(document, dict):
        raise DataFormatError(path, 0, "expected an object mapping sequence id -> list of frames")
    sequences: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for sequence, frames in document.items():
        if not isinstance(frames, list) or not all(isinstance(f, str) for f in frames):
            raise DataFormatError(path, 0, "expected a list of frame names", str(sequence))
        stems = [Path(f).stem if Path(f).suffix.lower() in IMAGE_EXTENSIONS else f for f in frames]
        for stem in stems:
            if owner.setdefault(stem, sequence) != sequence:
                raise DataFormatError(
                    path, 0, f"frame {stem!r} is in sequences {owner[stem]!r} and {sequence!r}"
                )
        sequences[str(sequence)] = stems
    return sequences


@dataclass(frozen=True)
class Split:
    """Folds of image paths (absolute) and the images no sequence claimed."""

    settings: SplitSettings
    folds: list[list[Path]]
    unassigned: list[Path]


def list_images(settings: SplitSettings) -> dict[str, Path]:
    """Image stem -> path of every image of the KITTI folder (the extension filter applied)."""
    folder = settings.root / settings.image_dir
    if not folder.is_dir():
        raise DataFormatError(folder, 0, "KITTI image folder does not exist")
    wanted = settings.image_extension
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if is_image(p) and (wanted is None or p.suffix.lower() == wanted.lower())
    }


def split_dataset(settings: SplitSettings) -> Split:
    """Partition the folder's images as `settings` say."""
    images = list_images(settings)
    if not images:
        raise DataFormatError(settings.root / settings.image_dir, 0, "no images to split")
    if settings.partition_mode == "random":
        folds = partition_random(list(images), settings.val_split, settings.seed)
        return Split(settings, [[images[s] for s in fold] for fold in folds], [])
    map_path = settings.root / settings.sequence_map
    sequences = read_sequence_map(map_path)
    for sequence, frames in sequences.items():
        missing = [f for f in frames if f not in images]
        if missing:
            raise DataFormatError(
                map_path, 0, f"frames without an image: {missing[:5]}", str(sequence)
            )
    folds = partition_sequence(sequences, settings.num_partitions)
    claimed = {frame for fold in folds for frame in fold}
    unassigned = [path for stem, path in images.items() if stem not in claimed]
    return Split(settings, [[images[s] for s in fold] for fold in folds], unassigned)


def _fold_counts(dataset: KittiDataset, images: list[Path]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for image in images:
        counts.update(obj.name for obj in read_label_file(dataset.label_for(image)))
    return counts


def split_inputs(settings: SplitSettings) -> tuple[Path, ...]:
    """What a split reads: the image and label folders and the sequence map."""
    root = settings.root
    return (root / settings.image_dir, root / settings.label_dir, root / settings.sequence_map)


def write_partitions(split: Split, out_dir: Path) -> dict[str, Any]:
    """Write `fold-<i>.txt` and `partitions.json` into `out_dir`; returns the JSON summary.

    The files are staged and renamed into place together; other files of `out_dir` stay,
    except the folds of an earlier split that had more of them.
    """
    s = split.settings
    root = s.root.resolve()
    dataset = KittiDataset(root, s.image_dir, s.label_dir, images=[])
    folds_summary = []
    with staged_folder(out_dir) as staging:
        for index, fold in enumerate(split.folds):
            relative = sorted(str(p.resolve().relative_to(root)) for p in fold)
            (staging / f"fold-{index}.txt").write_text("".join(r + "\n" for r in relative))
            counts = _fold_counts(dataset, fold)
            folds_summary.append(
                {"fold": index, "images": len(fold), "objects": dict(sorted(counts.items()))}
            )
        summary: dict[str, Any] = {
            "format": FORMAT,
            "root": str(root),
            "image_dir": s.image_dir,
            "label_dir": s.label_dir,
            "mode": s.partition_mode,
            "seed": s.seed,
            "val_split": s.val_split,
            "num_partitions": len(split.folds),
            "validation_fold": 0 if s.partition_mode == "random" else None,
            "folds": folds_summary,
            "unassigned": sorted(str(p.resolve().relative_to(root)) for p in split.unassigned),
        }
        (staging / PARTITIONS_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    written = {f"fold-{i}.txt" for i in range(len(split.folds))}
    for stale in out_dir.glob("fold-*.txt"):  # an earlier split may have had more folds
        if stale.name not in written:
            stale.unlink()
    return summary


def partitions_dir(path: Path | str) -> Path:
    """The folder of a split, given as the folder or as TAO's `tfrecords_path` glob ('OUT/*')."""
    path = Path(path)
    return path.parent if any(c in path.name for c in "*?[") else path


def read_partitions_summary(out_dir: Path | str) -> dict[str, Any]:
    folder = partitions_dir(out_dir)
    path = folder / PARTITIONS_FILE
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFormatError(path, 0, "no split here (run `heron data split` first)") from None
    except json.JSONDecodeError as e:
        raise DataFormatError(path, e.lineno, f"invalid JSON: {e.msg}") from None
    if not isinstance(summary, dict) or summary.get("format") != FORMAT:
        raise DataFormatError(path, 0, f"not a Heron split (expected format {FORMAT!r})", "format")
    return summary


def read_partitions(out_dir: Path | str) -> dict[int, list[Path]]:
    """Fold index -> absolute image paths, from a `heron data split` output folder.

    `out_dir` may be the folder or a TAO `tfrecords_path` glob such as 'OUT/*'.
    """
    folder = partitions_dir(out_dir)
    summary = read_partitions_summary(folder)
    root = Path(summary["root"])
    folds: dict[int, list[Path]] = {}
    for entry in summary["folds"]:
        index = int(entry["fold"])
        path = folder / f"fold-{index}.txt"
        if not path.is_file():
            raise DataFormatError(path, 0, "fold file listed in partitions.json is missing")
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if len(names) != entry["images"]:
            raise DataFormatError(
                path, 0, f"{len(names)} images, partitions.json says {entry['images']}"
            )
        folds[index] = [root / name for name in names]
    return folds


def training_datasets(
    tfrecords_path: Path | str, validation_fold: int
) -> tuple[KittiDataset, KittiDataset]:
    """(training, validation) datasets for a spec's `tfrecords_path` and `validation_fold`.

    Training gets every fold but `validation_fold`, as TAO's dataloader does.
    """
    folder = partitions_dir(tfrecords_path)
    summary = read_partitions_summary(folder)
    folds = read_partitions(folder)
    if validation_fold not in folds:
        raise DataFormatError(
            folder / PARTITIONS_FILE, 0, f"no fold {validation_fold}; folds are {sorted(folds)}"
        )
    root, image_dir, label_dir = Path(summary["root"]), summary["image_dir"], summary["label_dir"]
    train = [p for i, fold in folds.items() if i != validation_fold for p in fold]
    return (
        KittiDataset(root, image_dir, label_dir, images=train),
        KittiDataset(root, image_dir, label_dir, images=folds[validation_fold]),
    )
