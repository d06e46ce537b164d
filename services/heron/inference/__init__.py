"""The inference service: frames from the bus → a detector → FrameMetadata on the bus.

Backends (`heron.inference.backends`): ONNX Runtime in-process (the default on CPU), Triton over
gRPC (shared-memory inputs when co-located), PyTorch on CUDA. Preprocessing follows nvinfer
(`preprocess`), postprocessing is heron.postprocess with the nvinfer config's class attributes
(`detector`). Run it with `python -m heron.inference -c settings.yaml`; see docs/inference.md.
Heavy libraries (onnxruntime, tritonclient, torch, cv2) load only when a backend is built.
"""
