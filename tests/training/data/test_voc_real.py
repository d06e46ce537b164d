"""VOC conversion on 20 real images of ../shared/data/facemask-kaggle."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import cv2
import pytest
from heron.evaluation.kitti import KittiDataset
from heron.training.data.check import check_kitti
from heron.training.data.convert import convert_samples
from heron.training.data.formats import FORMATS, SourceFormat

pytestmark = pytest.mark.shared_data
MAPPING = FORMATS[SourceFormat.VOC].default_class_map


@pytest.fixture
def twenty(shared_data: Path, tmp_path: Path) -> Path:
    """A VOC folder of symlinks to the first 20 annotated images (nothing copied)."""
    source = shared_data / "facemask-kaggle"
    root = tmp_path / "voc20"
    (root / "annotations").mkdir(parents=True)
    (root / "images").mkdir()
    for xml in sorted((source / "annotations").glob("*.xml"))[:20]:
        (root / "annotations" / xml.name).symlink_to(xml)
        image = source / "images" / f"{xml.stem}.jpg"
        (root / "images" / image.name).symlink_to(image)
    return root


def source_objects(root: Path) -> list[tuple[str, str, tuple[float, ...]]]:
    """(image stem, class, box) read with plain ElementTree, independently of the converter."""
    objects = []
    for xml in sorted((root / "annotations").glob("*.xml")):
        for obj in ET.parse(xml).getroot().iter("object"):
            box = tuple(
                float(obj.findtext(f"bndbox/{t}") or "nan")
                for t in ("xmin", "ymin", "xmax", "ymax")
            )
            objects.append((xml.stem, obj.findtext("name") or "", box))
    return objects


def test_twenty_real_images(twenty: Path, tmp_path: Path) -> None:
    out = tmp_path / "kitti"
    samples = list(FORMATS[SourceFormat.VOC].read(twenty, None))
    report = convert_samples(samples, out, class_map=MAPPING, min_size=4)
    assert report.images == 20

    expected = Counter(name for _, name, _ in source_objects(twenty))
    counts = report.boxes
    assert counts.seen == expected
    for name, n in expected.items():
        assert counts.written[name] + counts.too_small[name] == n, name
    assert not counts.unmapped

    written: Counter[str] = Counter()
    for sample in KittiDataset(out):
        image = cv2.imread(str(sample.image))
        assert image is not None and image.shape == (544, 960, 3)
        for obj in sample.read_objects():
            written[obj.name] += 1
            assert 0 <= obj.x1 < obj.x2 <= 960 and 0 <= obj.y1 < obj.y2 <= 544, (sample.label, obj)
            assert obj.width >= 4 and obj.height >= 4
    assert written == report.written_per_target()
    assert sum(written.values()) == counts.written.total()

    report_check = check_kitti(out, ["mask", "no-mask"])
    assert report_check.ok, [str(d) for d in report_check.diagnostics.items]


def test_boxes_scale_with_the_image(twenty: Path, tmp_path: Path) -> None:
    stem, name, (x1, y1, x2, y2) = source_objects(twenty)[0]
    image = cv2.imread(str(twenty / "images" / f"{stem}.jpg"))
    assert image is not None
    height, width = image.shape[:2]
    out = tmp_path / "kitti"
    convert_samples(list(FORMATS[SourceFormat.VOC].read(twenty, None)), out, class_map=MAPPING)
    first = (out / "labels" / f"{stem}.txt").read_text().splitlines()[0].split()
    sx, sy = 960 / width, 544 / height
    assert first[0] == MAPPING[name]
    assert [float(v) for v in first[4:8]] == pytest.approx(
        [min(x1 * sx, 960), min(y1 * sy, 544), min(x2 * sx, 960), min(y2 * sy, 544)], abs=0.006
    )
