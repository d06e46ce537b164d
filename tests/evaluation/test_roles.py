"""Image roles: the split into train, select and gate never overlaps, is the same for the same
names and seed, keeps training's own hold-out; and image files in two roles are refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from heron.evaluation.roles import (
    ImageFiles,
    ImageSet,
    Role,
    RoleOverlapError,
    check_disjoint,
    names_digest,
    partition_random,
    split_roles,
)

NAMES = [f"img{i:04d}" for i in range(691)]  # the facemask set's size


@pytest.mark.parametrize("seed", [42, 0, 7, 12345])
def test_roles_never_overlap_and_cover_every_image(seed: int) -> None:
    roles = split_roles(NAMES, seed=seed)
    train, select, gate = (set(s.names) for s in (roles.train, roles.select, roles.gate))
    assert not train & select and not train & gate and not select & gate
    assert train | select | gate == set(NAMES)
    assert (len(train), len(select), len(gate)) == (553, 69, 69)  # 20 % held out, halved
    calibration = set(roles.calibration(100, shuffle_seed=seed).names)
    assert len(calibration) == 100 and calibration <= train


@pytest.mark.parametrize("seed", [42, 3])
def test_roles_are_deterministic_and_order_free(seed: int) -> None:
    a = split_roles(NAMES, seed=seed)
    b = split_roles(list(reversed(NAMES)) + NAMES[:5], seed=seed)  # order, repeats: no matter
    assert a.fingerprints() == b.fingerprints()
    other = split_roles(NAMES, seed=seed + 1)
    assert other.gate.names != a.gate.names


@pytest.mark.parametrize("seed", [42, 1, 99])
def test_train_is_trainings_own_hold_out(seed: int) -> None:
    """A model trained on partition_random's 80 % (VocData, heron data split) keeps them."""
    held_out, train = partition_random(NAMES, 20.0, seed)
    roles = split_roles(NAMES, seed=seed)
    assert list(roles.train.names) == train
    assert sorted(roles.select.names + roles.gate.names) == held_out


def test_training_split_uses_the_same_cut() -> None:
    from heron.training.data.split import partition_random as trainings

    assert trainings(NAMES, 20.0, 42) == partition_random(NAMES, 20.0, 42)


def test_fingerprint_names_role_count_and_hash() -> None:
    s = ImageSet(Role.GATE, ("b", "a"), "here")
    assert s.fingerprint() == {
        "role": "gate",
        "count": 2,
        "names_sha256": names_digest(["a", "b"]),
        "source": "here",
    }
    assert names_digest(["a", "b"]) == names_digest(["b", "a"]) != names_digest(["a"])
    with pytest.raises(ValueError, match="twice"):
        ImageSet(Role.TRAIN, ("a", "a"))


def test_too_few_images_for_select_and_gate() -> None:
    with pytest.raises(ValueError, match="too few for both a select and a gate set"):
        split_roles(NAMES[:6])


def _files(folder: Path, names: dict[str, bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in names.items():
        (folder / name).write_bytes(content)
    return sorted(folder / n for n in names)


def test_disjoint_sets_pass(tmp_path: Path) -> None:
    a = _files(tmp_path / "a", {"x.jpg": b"1" * 10, "y.jpg": b"2" * 11})
    b = _files(tmp_path / "b", {"z.jpg": b"3" * 10, "w.jpg": b"4" * 11})  # same sizes only
    check_disjoint(
        ImageFiles(Role.CALIBRATION, "a", tuple(a)), None, ImageFiles(Role.GATE, "b", tuple(b))
    )


def test_same_name_is_refused_naming_both_sets(tmp_path: Path) -> None:
    """A KITTI conversion re-encodes the picture and keeps its name."""
    a = _files(tmp_path / "calib", {"face1.jpg": b"original", "face2.jpg": b"other"})
    b = _files(tmp_path / "kitti" / "images", {"face1.jpg": b"re-encoded at 960x544"})
    calibration = ImageFiles(Role.CALIBRATION, "--images calib", tuple(a))
    gate = ImageFiles(Role.GATE, "--eval-data kitti", tuple(b))
    with pytest.raises(RoleOverlapError) as error:
        check_disjoint(calibration, gate)
    message = str(error.value)
    assert "calibration images (--images calib, 2 images)" in message
    assert "gate images (--eval-data kitti, 1 images)" in message
    assert "share 1 images, e.g. face1.jpg = face1.jpg (same name)" in message


def test_same_content_under_another_name_is_refused(tmp_path: Path) -> None:
    """Training's INT8 step links its calibration images as 0000000.jpg, ...: a link, or a
    renamed copy, keeps the bytes."""
    originals = _files(tmp_path / "data", {"face1.jpg": b"pixels one", "face2.jpg": b"pixels 2"})
    links = tmp_path / "links"
    links.mkdir()
    (links / "0000000.jpg").symlink_to(originals[0])
    copies = tmp_path / "copies"
    copies.mkdir()
    shutil.copy(originals[1], copies / "renamed.jpg")
    select = ImageFiles(Role.SELECT, "select", (originals[1],))
    with pytest.raises(RoleOverlapError, match=r"renamed\.jpg = face2\.jpg \(same content\)"):
        check_disjoint(ImageFiles(Role.CALIBRATION, "copies", (copies / "renamed.jpg",)), select)
    gate = ImageFiles(Role.GATE, "gate", (originals[0],))
    # A link is named by the file it points to.
    with pytest.raises(RoleOverlapError, match=r"0000000\.jpg = face1\.jpg \(same name\)"):
        check_disjoint(ImageFiles(Role.CALIBRATION, "links", (links / "0000000.jpg",)), gate)
