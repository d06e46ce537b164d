"""Streammux: batches the frames of N sources for inference, as DeepStream's nvstreammux does
(`python -m heron.streammux --config settings.yaml`; see docs/streammux.md)."""
