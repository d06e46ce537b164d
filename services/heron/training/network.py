"""The network a training run starts from: DetectNet_v2 built from the spec with pretrained
weights, or — TAO's retrain of a pruned model — the narrowed network read from its file.

It sits above both `model` and `prune.layout`, which reads pruned graphs into a `DetectNetV2`:
the choice between them lives here so neither module imports the other's caller.
"""

from __future__ import annotations

from heron.training.model import (
    DetectNetV2,
    LoadReport,
    freeze,
    load_pretrained,
    mobilenet_imagenet_weights,
)
from heron.training.prune.layout import load_graph
from heron.training.settings import ModelSettings


def build_model(settings: ModelSettings, num_classes: int) -> tuple[DetectNetV2, LoadReport | None]:
    """The network with its pretrained weights (if any) loaded and its blocks frozen.

    With `load_graph` (TAO's retrain of a pruned model) the file's narrowed layers replace the
    network `arch`/`num_layers` would build (`heron.training.prune.layout.load_graph`).
    """
    if settings.load_graph:
        return load_graph(settings, num_classes, settings.pretrained_model_file)
    model = DetectNetV2(settings, num_classes)
    report = None
    if settings.pretrained_model_file:
        report = load_pretrained(model, settings.pretrained_model_file)
    elif settings.arch == "mobilenet_v2":
        report = load_pretrained(model, mobilenet_imagenet_weights())
    freeze(model, settings.freeze_blocks, settings.freeze_bn)
    return model, report
