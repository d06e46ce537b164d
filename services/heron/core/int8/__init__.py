"""INT8 artefacts shared by the services that make them (engine) and use them (inference).

`calib_cache`: TensorRT's calibration cache, the text file DeepStream reads as
`int8-calib-file`. `qdq`: explicitly quantised ONNX models made from calibrated ranges.
"""
