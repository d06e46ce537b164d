"""Scoring a detector the same way wherever it is scored: below the services, so that training
(`heron evaluate`, validation) and the engine's INT8 accuracy gate share it and report one AP.

- `ap`: per-class AP and mAP with TAO detectnet_v2 semantics (`evaluate`, `EvaluationConfig`,
  `GroundTruth`, `EvalReport`, `plot_pr_curves`); see docs/evaluation.md.
- `kitti`: KITTI labels (`KittiDataset`, `read_label_file`, `KittiObject`); `errors`:
  `DataFormatError`, naming file, line and field.
- `images`: decode and resize to the network input, float [0, 1] (torch, torchvision).
- `model_settings`: the scoring part of the training settings an exported model carries
  (`settings_from_metadata`), and the clustering / evaluation conversions both sides use.

This module imports nothing: `kitti`, `errors` and `model_settings` load with the standard
library alone (the GPU training machines have torch and numpy, not pydantic).
"""
