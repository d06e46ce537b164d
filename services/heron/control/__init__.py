"""The control service (`python -m heron.control`): the gRPC API of a running pipeline.

It serves Detections.Subscribe (per-frame metadata of the last stage, resumable by position)
with health and reflection on the kit's server (heron.core.grpc); see docs/grpc.md. The
client library and the `heron` commands that use it are `heron.control.client` and
`heron.control.cli`.
"""
