"""The control service (`python -m heron.control`): the gRPC API of a running pipeline.

It serves Pipeline (sources and parameters at run time, status) and Detections.Subscribe
(per-frame metadata of the last stage, resumable by position) with health and reflection on the
kit's server (heron.core.grpc); see docs/grpc.md. The client library and the `heron` commands
that use it are `heron.client` and `heron.cli.client`.
"""
