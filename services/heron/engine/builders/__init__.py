"""The two TensorRT flavours behind heron.engine.build: `tensorrt` (builds on its GPU) and
`tensorrt_rtx` (ahead-of-time builds on CPU for SM 7.5–12.1)."""
