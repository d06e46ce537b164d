"""The engine service: INT8 calibration with an accuracy gate, TensorRT / TensorRT-RTX engine
builds with plan metadata, and Triton model repositories (issue 4).

Modules: `calibrate` (images → ranges → `calib_cache` + `qdq` models), `accuracy` (FP32 vs
INT8 AP gate), `build` with `builders/` (one code path, two TensorRT flavours), `plan_meta`
(what a plan was built for; refuses a mismatched node), `triton_repo` (config.pbtxt through the
Triton model_config proto) and `service` (`python -m heron.engine`: one build request as a Job).
"""
