"""Pruning and retraining of DetectNet_v2 (TAO's `prune` and retrain with `load_graph`).

`pruner` narrows a checkpoint's network (torch-pruning's dependency graph, TAO's importance
in `importance`); `layout` rebuilds a pruned network from its checkpoint for retraining,
evaluation and export. See docs/pruning.md.
"""
