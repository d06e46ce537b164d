"""Write the binary parts of tests/fixtures/datasets: tiny images and MAFA's .mat files.

The text annotations there (VOC XML, Kaggle JSON, FDDB and WIDER lists) are written by hand
from each format's documented layout; this script makes the images they point at, sized so
that the 960x544 output scales them by 4 (240x136) or 2 (480x272), and the MAFA label files
through scipy.io.savemat in the layout of MAFA's readme. Run from the repository root:

    .venv/bin/python -m tests.training.data.make_fixtures
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import scipy.io

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "datasets"
SMALL, LARGE = (240, 136), (480, 272)

IMAGES: dict[str, tuple[int, int]] = {
    "voc/images/a.jpg": SMALL,
    "voc/images/b.jpg": LARGE,
    "kaggle/images/c.jpg": SMALL,
    "kaggle/images/d.png": LARGE,
    "mafa/train-images/images/train_00000001.jpg": SMALL,
    "mafa/train-images/images/train_00000002.jpg": LARGE,
    "mafa/test-images/images/test_00000001.jpg": SMALL,
    "fddb/originalPics/2002/08/11/big/img_591.jpg": SMALL,
    "fddb/originalPics/2002/08/26/big/img_265.jpg": SMALL,
    "wider/WIDER_train/images/0--Parade/0_Parade_marchingband_1_5.jpg": LARGE,
    "wider/WIDER_train/images/1--Handshaking/1_Handshaking_Handshaking_1_35.jpg": SMALL,
    "wider/WIDER_train/images/2--Demonstration/2_Demonstration_Protesters_2_11.jpg": SMALL,
}


def gradient(size: tuple[int, int]) -> np.ndarray:
    """A smooth BGR picture: compresses to a few hundred bytes, unlike noise."""
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    picture = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1).astype(np.uint8)
    return (picture // 64) * 64  # coarse bands: a PNG of it stays small too


def face_row_train(x: int, y: int, w: int, h: int, occ_type: int) -> list[int]:
    """A 21-column LabelTrainAll row: face, eyes, occluder, occ_type..orientation, glasses."""
    eyes = [x + w // 4, y + h // 3, x + 3 * w // 4, y + h // 3]
    occluder = [0, h // 2, w, h // 2]
    return [x, y, w, h, *eyes, *occluder, occ_type, 2, 1, 1, 3, -1, -1, -1, -1]


def face_row_test(x: int, y: int, w: int, h: int, face_type: int) -> list[int]:
    """An 18-column LabelTestAll row: face, face_type, occluder, occ_type..orientation, glasses."""
    return [x, y, w, h, face_type, 0, h // 2, w, h // 2, 1, 2, 1, 1, 3, -1, -1, -1, -1]


def struct_array(fields: list[str], records: list[tuple[object, ...]]) -> np.ndarray:
    """A 1xN MATLAB struct array as savemat writes it."""
    array = np.zeros((1, len(records)), dtype=[(f, object) for f in fields])
    for i, record in enumerate(records):
        for field, value in zip(fields, record, strict=True):
            array[0, i][field] = value
    return array


def write_mafa(root: Path) -> None:
    train = struct_array(
        ["orgImgName", "imgName", "label"],
        [
            (
                "add_1.jpg",
                "train_00000001.jpg",
                np.array(
                    [face_row_train(10, 20, 30, 40, 1), face_row_train(150, 30, 40, 40, 3)],
                    dtype=np.int16,
                ),
            ),
            (
                "add_2.jpg",
                "train_00000002.jpg",
                np.array([face_row_train(400, 200, 100, 100, 2)], dtype=np.int16),
            ),
        ],
    )
    test = struct_array(
        ["name", "label"],
        [
            (
                "test_00000001.jpg",
                np.array(
                    [face_row_test(50, 30, 20, 25, 2), face_row_test(100, 60, 30, 30, 3)],
                    dtype=np.int16,
                ),
            )
        ],
    )
    (root / "MAFA-Label-Train").mkdir(parents=True, exist_ok=True)
    (root / "MAFA-Label-Test").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "MAFA-Label-Train" / "LabelTrainAll.mat", {"label_train": train})
    scipy.io.savemat(root / "MAFA-Label-Test" / "LabelTestAll.mat", {"LabelTest": test})


def main() -> None:
    for relative, size in IMAGES.items():
        path = FIXTURES / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        params = [cv2.IMWRITE_JPEG_QUALITY, 50] if path.suffix == ".jpg" else []
        if not cv2.imwrite(str(path), gradient(size), params):
            raise OSError(f"could not write {path}")
    write_mafa(FIXTURES / "mafa")


if __name__ == "__main__":
    main()
