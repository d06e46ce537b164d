"""The overlay service: OSD (boxes, labels, tracker ids, clock), tiler and sinks (file, RTSP,
message broker); `python -m heron.overlay -c settings.yaml` (docs/overlay.md)."""
