"""IOU tracker (DeepStream's libnvds_mot_iou.so): association by overlap alone, no motion."""

from __future__ import annotations

from heron.tracker.core import TargetTracker


class IouTracker(TargetTracker):
    """Targets stay where their last detection was; matching is by IoU (Hungarian)."""
