"""Raw samples -> a KITTI folder: resize, scale and clamp boxes, drop what cannot be trained on.

Every image is resized to the network's input size (DetectNet_v2 trains on one fixed size)
and written as JPEG; its boxes are scaled with it, clamped to the image, and dropped when
smaller than `min_size` pixels (after resizing) or when their class is not in the class map.
Every drop is counted per source class, so the summary says what the conversion threw away.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from heron.core.outputs import OutputKind, check_output, staged_folder
from heron.evaluation.errors import DataFormatError
from heron.evaluation.kitti import KittiObject, write_label_file
from heron.training.data.check import image_size
from heron.training.data.sample import Box, Sample

JPEG_QUALITY = 95
DEFAULT_SIZE = (960, 544)


@dataclass
class BoxCounts:
    """Boxes per source class: seen, written, clamped (and written), too small, unmapped."""

    seen: Counter[str] = field(default_factory=Counter)
    written: Counter[str] = field(default_factory=Counter)
    clamped: Counter[str] = field(default_factory=Counter)
    too_small: Counter[str] = field(default_factory=Counter)
    unmapped: Counter[str] = field(default_factory=Counter)

    def add(self, other: BoxCounts) -> None:
        for name in ("seen", "written", "clamped", "too_small", "unmapped"):
            getattr(self, name).update(getattr(other, name))


@dataclass
class ConvertReport:
    """What a conversion wrote and dropped."""

    output: Path
    size: tuple[int, int]
    class_map: Mapping[str, str]
    images: int = 0
    negative_images: int = 0  # images written with an empty label file
    boxes: BoxCounts = field(default_factory=BoxCounts)

    def written_per_target(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for source, n in self.boxes.written.items():
            totals[self.class_map[source]] += n
        return totals


def transform_boxes(
    boxes: Sequence[Box],
    source_size: tuple[int, int],
    size: tuple[int, int],
    class_map: Mapping[str, str],
    min_size: float,
) -> tuple[list[KittiObject], BoxCounts]:
    """Map classes, scale from `source_size` to `size` (w, h), clamp, drop small boxes."""
    sx, sy = size[0] / source_size[0], size[1] / source_size[1]
    objects: list[KittiObject] = []
    counts = BoxCounts()
    for box in boxes:
        counts.seen[box.label] += 1
        target = class_map.get(box.label)
        if target is None:
            counts.unmapped[box.label] += 1
            continue
        scaled = (box.x1 * sx, box.y1 * sy, box.x2 * sx, box.y2 * sy)
        x1, x2 = (min(max(v, 0.0), float(size[0])) for v in scaled[0::2])
        y1, y2 = (min(max(v, 0.0), float(size[1])) for v in scaled[1::2])
        # Decide on the 2-decimal values the label file will hold, so the file agrees.
        x1, y1, x2, y2 = (round(v, 2) for v in (x1, y1, x2, y2))
        if x2 - x1 < min_size or y2 - y1 < min_size:
            counts.too_small[box.label] += 1
            continue
        if (x1, y1, x2, y2) != tuple(round(v, 2) for v in scaled):
            counts.clamped[box.label] += 1
        counts.written[box.label] += 1
        objects.append(KittiObject(target, x1, y1, x2, y2))
    return objects, counts


def check_boxes_meet_image(sample: Sample, size: tuple[int, int]) -> None:
    """A box that lies wholly outside its image belongs to another image, or the image's size
    in the annotation is wrong: a DataFormatError naming both (clamping would make it a box of
    no size, counted as merely small)."""
    width, height = size
    for box in sample.boxes:
        inside_w = min(box.x2, width) - max(box.x1, 0.0)
        inside_h = min(box.y2, height) - max(box.y1, 0.0)
        if (
            inside_w < 0
            or inside_h < 0
            or (inside_w == 0 and box.x2 > box.x1)
            or (inside_h == 0 and box.y2 > box.y1)
        ):
            coords = ", ".join(f"{v:g}" for v in box.coords)
            raise DataFormatError(
                sample.source,
                0,
                f"box {box.label!r} ({coords}) lies wholly outside the {width}x{height} image "
                f"{sample.image}: expected boxes in that image's pixels (is the annotation's "
                "image or size wrong?)",
            )


@dataclass(frozen=True)
class _Job:
    output: Path
    size: tuple[int, int]
    class_map: Mapping[str, str]
    min_size: float

    def __call__(self, sample: Sample) -> BoxCounts:
        import cv2

        if not sample.image.is_file():
            raise DataFormatError(sample.source, 0, f"image {sample.image} is missing")
        image_size(sample.image)  # a truncated file is refused, not filled with grey by OpenCV
        # Boxes refer to the pixels as stored (the size VOC's <size> and PIL report); applying
        # an EXIF rotation here would turn the image away from its boxes.
        image = cv2.imread(str(sample.image), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None:
            raise DataFormatError(
                sample.source, 0, f"image {sample.image} is missing or unreadable"
            )
        height, width = image.shape[:2]
        check_boxes_meet_image(sample, (width, height))
        shrink = self.size[0] <= width and self.size[1] <= height
        resized = cv2.resize(
            image, self.size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
        target = self.output / "images" / f"{sample.name}.jpg"
        if not cv2.imwrite(str(target), resized, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f"could not write {target}")
        objects, counts = transform_boxes(
            sample.boxes, (width, height), self.size, self.class_map, self.min_size
        )
        write_label_file(self.output / "labels" / f"{sample.name}.txt", objects)
        return counts


KITTI_FOLDERS = ("images", "labels")


def refuse_earlier_conversion(output: Path, samples: Sequence[Sample], overwrite: bool) -> None:
    """Refuse to mix with an earlier conversion's files unless `overwrite`, and to replace the
    folders the samples are read from (OutputPathError)."""
    read_from = {p.parent for s in samples for p in (s.image, s.source)}
    for sub in KITTI_FOLDERS:
        check_output(output / sub, OutputKind.FOLDER, option="output", inputs=read_from)
        folder = output / sub
        if folder.is_dir() and any(folder.iterdir()) and not overwrite:
            raise FileExistsError(f"{folder} is not empty (pass overwrite to replace it)")


def check_unique_names(samples: Sequence[Sample]) -> None:
    seen: dict[str, Sample] = {}
    for sample in samples:
        other = seen.setdefault(sample.name, sample)
        if other is not sample:
            raise DataFormatError(
                sample.source,
                0,
                f"{sample.image} and {other.image} would both be written as {sample.name!r}",
            )


def convert_samples(
    samples: Sequence[Sample],
    output: Path,
    *,
    class_map: Mapping[str, str],
    size: tuple[int, int] = DEFAULT_SIZE,
    min_size: float = 4.0,
    workers: int = 2,
    overwrite: bool = False,
    on_image: Callable[[], None] | None = None,
) -> ConvertReport:
    """Write `samples` as a KITTI folder at `output`; images are decoded/encoded in threads.

    OpenCV releases the GIL while it decodes, resizes and encodes, so threads use every core
    without the start-up and pickling cost of processes. Raises DataFormatError for a missing
    or unreadable image, naming it and its annotation file.
    """
    if size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"output size must be positive, got {size[0]}x{size[1]}")
    check_unique_names(samples)
    refuse_earlier_conversion(output, samples, overwrite)
    report = ConvertReport(output=output, size=size, class_map=dict(class_map))
    # Built beside OUTPUT/images and OUTPUT/labels, which are replaced only once both are
    # complete: a failed conversion leaves an earlier one (and the sources) as they were.
    with staged_folder(output) as staging:
        for sub in KITTI_FOLDERS:
            (staging / sub).mkdir()
        job = _Job(staging, size, report.class_map, min_size)
        _run(job, samples, report, workers=workers, on_image=on_image)
    return report


def _run(
    job: _Job,
    samples: Sequence[Sample],
    report: ConvertReport,
    *,
    workers: int,
    on_image: Callable[[], None] | None,
) -> None:
    executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="convert")
    futures: list[Future[BoxCounts]] = [executor.submit(job, s) for s in samples]
    try:
        for future in futures:
            counts = future.result()
            report.images += 1
            report.negative_images += not counts.written
            report.boxes.add(counts)
            if on_image:
                on_image()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
