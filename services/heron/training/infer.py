"""`heron infer`: KITTI prediction files and annotated JPEGs for a folder of images.

The detections are the model's own post-processing (the spec's clustering thresholds, which a
spec tuned for AP sets low enough to keep every candidate), or only those scoring at least
`threshold`: a picture with every box down to 0.01 drawn shows nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from heron.core.outputs import staged_folder
from heron.evaluation.kitti import KittiObject
from heron.training.job import TrainingError, readable_errors

COLOURS = ((0, 200, 0), (0, 0, 230), (230, 120, 0), (200, 0, 200), (0, 200, 200))


def infer_images(
    model: Path,
    images: Path,
    output: Path,
    batch_size: int = 8,
    threshold: float | None = None,
) -> tuple[int, int]:
    """KITTI prediction files and annotated JPEGs for every image; (images, detections).

    Written beside OUT/labels and OUT/images and moved into them at the end (predictions of
    other images already there stay): a failed run adds nothing.
    """
    from heron.evaluation.kitti import write_label_file
    from heron.training.predict import image_paths, load_runner, predict_paths

    with readable_errors():
        runner = load_runner(model)
        paths = image_paths(images)
    with readable_errors(), staged_folder(output, merge=True) as staging:
        (staging / "labels").mkdir()
        (staging / "images").mkdir()
        classes = runner.settings.classes
        count = boxes = 0
        for pred in predict_paths(runner, paths, batch_size):
            d = pred.detections
            objects = [
                KittiObject(
                    classes[int(c)],
                    x1=float(b[0]),
                    y1=float(b[1]),
                    x2=float(b[2]),
                    y2=float(b[3]),
                    score=float(s),
                )
                for b, s, c in zip(d.xyxy, d.scores, d.class_ids, strict=True)
                if threshold is None or s >= threshold
            ]
            write_label_file(staging / "labels" / (pred.image.stem + ".txt"), objects)
            _annotate(pred.image, objects, staging / "images" / (pred.image.stem + ".jpg"))
            count, boxes = count + 1, boxes + len(objects)
    return count, boxes


def _annotate(image: Path, objects: Sequence[KittiObject], out: Path) -> None:
    import cv2

    picture = cv2.imread(str(image))
    if picture is None:
        raise TrainingError(f"{image}: OpenCV cannot read it")
    names = sorted({o.name for o in objects})
    for o in objects:
        colour = COLOURS[names.index(o.name) % len(COLOURS)]
        p1, p2 = (round(o.x1), round(o.y1)), (round(o.x2), round(o.y2))
        cv2.rectangle(picture, p1, p2, colour, 2)
        cv2.putText(
            picture,
            f"{o.name} {o.score:.2f}",
            (p1[0], max(p1[1] - 4, 10)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            colour,
            1,
            cv2.LINE_AA,
        )
    cv2.imwrite(str(out), picture)
