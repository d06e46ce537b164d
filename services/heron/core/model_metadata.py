"""The metadata key under which an exported ONNX model carries its settings (classes, input
size, clustering): written by training's export, read by evaluation, the engine and the
inference service, so it lives below all of them."""

SETTINGS_METADATA_KEY = "heron.settings"
