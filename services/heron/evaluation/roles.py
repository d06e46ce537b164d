"""Which image plays which role: one deterministic split of a data set, and the check that no
image plays two roles in one run.

A model's numbers mean something only on images nothing was fitted or chosen on. Three roles:

- `train`: the images the weights are trained on. INT8 calibration draws its images from
  them too (`calibration` is that use): TAO calibrates on training images, ranges are fitted
  statistics like the weights, and the held-out images are too few to spend on them.
- `select`: held-out images that choose recipes (an INT8 method, percentile and float layers;
  `heron calibrate --method auto` scores its candidates on them).
- `gate`: held-out images that score the result: the INT8 accuracy gate and every reported
  number. Nothing is chosen on them.

`split_roles` makes the three from image names. Its train/held-out cut is the one training's
hold-out has always made (`partition_random(names, 20, 42)`: `VocData`, `heron data split`,
bench/train_facemask.py), so a model trained before roles existed keeps its training images;
the held-out images are then cut into `select` and `gate` with the same seeded shuffle. The
same names and seed give the same roles on every machine, whatever order the names come in.

`check_disjoint` refuses image files that play two roles, by name and by content (see there).
Every report records each set's `fingerprint()`: its role, image count and a hash of its names.
Standard library only, like the rest of this package's data layer.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

HOLD_OUT_PERCENT = 20.0  # training's hold-out (VocData, TAO's val_split default)
SEED = 42  # TAO fixes its split seed at 42
SELECT_PERCENT = 50.0  # of the held-out images; the rest score the gate


class Role(StrEnum):
    TRAIN = "train"
    CALIBRATION = "calibration"  # training images that calibrate INT8 ranges
    SELECT = "select"
    GATE = "gate"


class RoleOverlapError(ValueError):
    """Images play two roles (calibration and gate, say); the message names both sets."""


def partition_random(names: Sequence[str], val_split: float, seed: int) -> list[list[str]]:
    """[validation, training]: floor(val_split% of n) names picked by a seeded shuffle."""
    shuffled = sorted(names)
    random.Random(seed).shuffle(shuffled)
    num_val = int(val_split / 100 * len(shuffled))
    return [sorted(shuffled[:num_val]), sorted(shuffled[num_val:])]


def names_digest(names: Iterable[str]) -> str:
    """sha256 of the sorted names, one per line: two sets with this digest hold the same names."""
    text = "".join(f"{name}\n" for name in sorted(names))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ImageSet:
    """Image names (stems, sorted) in one role; `source` says where they came from."""

    role: Role
    names: tuple[str, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"{self.role} images {self.source}: a name appears twice")
        object.__setattr__(self, "names", tuple(sorted(self.names)))

    @classmethod
    def from_paths(cls, role: Role, paths: Iterable[Path], source: str = "") -> ImageSet:
        """The set of image files: each named by the stem of the file a link points to."""
        return cls(role, tuple(_stem(p) for p in paths), source)

    def fingerprint(self) -> dict[str, Any]:
        """What a report records of the set: role, count and the hash of its names."""
        return {
            "role": self.role.value,
            "count": len(self.names),
            "names_sha256": names_digest(self.names),
            "source": self.source,
        }


@dataclass(frozen=True)
class Roles:
    """A data set's images in their three roles; disjoint, and together all of them."""

    train: ImageSet
    select: ImageSet
    gate: ImageSet
    seed: int
    hold_out_percent: float
    select_percent: float

    def fingerprints(self) -> list[dict[str, Any]]:
        return [s.fingerprint() for s in (self.train, self.select, self.gate)]

    def calibration(self, count: int | None = None, shuffle_seed: int = 0) -> ImageSet:
        """`count` training images (all when None) for INT8 calibration, in a seeded shuffle
        cut to `count`: a sample of the whole training set, not its first names."""
        names = list(self.train.names)
        random.Random(shuffle_seed).shuffle(names)
        chosen = names if count is None else names[:count]
        return ImageSet(Role.CALIBRATION, tuple(chosen), f"{count or len(names)} of train")


def split_roles(
    names: Iterable[str],
    *,
    seed: int = SEED,
    hold_out_percent: float = HOLD_OUT_PERCENT,
    select_percent: float = SELECT_PERCENT,
) -> Roles:
    """`train`, `select` and `gate` of image `names` (stems).

    train/held-out is `partition_random(names, hold_out_percent, seed)`, training's own
    hold-out; `select_percent` % of the held-out images (rounded down) select, the rest gate.
    """
    unique = sorted(set(names))
    if not 0.0 < hold_out_percent < 100.0 or not 0.0 < select_percent < 100.0:
        raise ValueError(
            "roles: expected hold_out_percent and select_percent in (0, 100), got "
            f"{hold_out_percent} and {select_percent}"
        )
    held_out, train = partition_random(unique, hold_out_percent, seed)
    select, gate = partition_random(held_out, select_percent, seed)
    if not select or not gate:
        raise ValueError(
            f"roles: {len(unique)} images leave {len(held_out)} held out, too few for both a "
            "select and a gate set"
        )
    how = f"split seed {seed}, {hold_out_percent:g} % held out, {select_percent:g} % of it select"
    return Roles(
        train=ImageSet(Role.TRAIN, tuple(train), how),
        select=ImageSet(Role.SELECT, tuple(select), how),
        gate=ImageSet(Role.GATE, tuple(gate), how),
        seed=seed,
        hold_out_percent=hold_out_percent,
        select_percent=select_percent,
    )


@dataclass(frozen=True)
class ImageFiles:
    """Image files in one role of a run: `where` names them in messages (a folder, an option)."""

    role: Role
    where: str
    paths: tuple[Path, ...]

    def image_set(self) -> ImageSet:
        return ImageSet.from_paths(self.role, self.paths, self.where)

    def describe(self) -> str:
        return f"{self.role.value} images ({self.where}, {len(self.paths)} images)"


def _stem(path: Path) -> str:
    return path.resolve().stem if path.is_symlink() else path.stem


def shared_images(a: ImageFiles, b: ImageFiles) -> list[tuple[Path, Path, str]]:
    """(image of a, image of b, "name" or "content") for every image the two share.

    Names compare by stem, after following links: KITTI conversion re-encodes an image at the
    network size but keeps its name, so a gate folder converted from training images differs
    in every byte and shares every name. Contents compare by sha256: a renamed copy or link
    (training's INT8 step links its calibration images as 0000000.jpg, ...) keeps its bytes.
    Two data sets that reuse plain names (000001.jpg) for different pictures are refused too:
    rename one.
    """
    found: list[tuple[Path, Path, str]] = []
    names = {_stem(p): p for p in b.paths}
    for path in a.paths:
        if (other := names.get(_stem(path))) is not None:
            found.append((path, other, "name"))
    named = {p for p, _, _ in found}
    by_size: dict[int, list[Path]] = {}
    for path in b.paths:
        by_size.setdefault(path.stat().st_size, []).append(path)
    digests: dict[Path, str] = {}

    def digest(path: Path) -> str:
        if path not in digests:
            digests[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        return digests[path]

    for path in a.paths:
        # Only files of one size can hold the same bytes: most files are never read.
        candidates = [] if path in named else by_size.get(path.stat().st_size, [])
        match = next((o for o in candidates if digest(o) == digest(path)), None)
        if match is not None:
            found.append((path, match, "content"))
    return found


def check_disjoint(*sets: ImageFiles | None) -> None:
    """RoleOverlapError naming both sets (and up to three shared images) when two share one."""
    given = [s for s in sets if s is not None]
    for index, a in enumerate(given):
        for b in given[index + 1 :]:
            shared = shared_images(a, b)
            if shared:
                examples = ", ".join(
                    f"{x.name} = {y.name} (same {how})" for x, y, how in shared[:3]
                )
                raise RoleOverlapError(
                    f"{a.describe()} and {b.describe()} share {len(shared)} images, e.g. "
                    f"{examples}: no image may play two roles. Calibrate on training images "
                    "and choose and score on held-out ones (docs/engine.md, 'Image roles')."
                )
