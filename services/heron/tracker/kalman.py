"""A constant-velocity Kalman filter of a box: centre, size and their velocities (numpy).

State (cx, cy, w, h, vx, vy, vw, vh); measurement (cx, cy, w, h). Noise variances are
DeepStream's StateEstimator keys (processNoiseVar4Loc/Size/Vel, measurementNoiseVar4Detector).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from heron.core.boxes import cxcywh_to_xyxy, xyxy_to_cxcywh
from heron.core.config.tracker_params import StateEstimator

Vector = npt.NDArray[np.float64]

_F = np.eye(8) + np.eye(8, k=4)  # x += v each frame
_H = np.eye(4, 8)


def to_measurement(box: Vector) -> Vector:
    return xyxy_to_cxcywh(box)


class KalmanBox:
    def __init__(self, box: Vector, noise: StateEstimator) -> None:
        self.x = np.concatenate([to_measurement(box), np.zeros(4)])
        loc, size, vel = (
            noise.process_noise_var_4_loc,
            noise.process_noise_var_4_size,
            noise.process_noise_var_4_vel,
        )
        self.q = np.diag([loc, loc, size, size, vel, vel, vel, vel])
        self.r = np.eye(4) * noise.measurement_noise_var_4_detector
        # Unknown velocity at birth: a wide prior, so the first matches set it.
        self.p = np.diag([*np.diag(self.r), 100.0, 100.0, 25.0, 25.0])

    def predict(self) -> Vector:
        if self.x[2] + self.x[6] <= 1 or self.x[3] + self.x[7] <= 1:
            self.x[6:] = 0  # a box must not shrink through zero
        self.x = _F @ self.x
        self.p = _F @ self.p @ _F.T + self.q
        return self.box()

    def update(self, box: Vector) -> None:
        y = to_measurement(box) - _H @ self.x
        s = _H @ self.p @ _H.T + self.r
        k = np.linalg.solve(s, _H @ self.p).T  # P H^T S^-1, S symmetric
        self.x = self.x + k @ y
        self.p = (np.eye(8) - k @ _H) @ self.p

    def box(self) -> Vector:
        cxcywh = self.x[:4].copy()
        cxcywh[2:] = np.maximum(cxcywh[2:], 1.0)
        return cxcywh_to_xyxy(cxcywh)
