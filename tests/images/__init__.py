"""The container images (images/<name>/Dockerfile), checked without a Docker daemon."""
