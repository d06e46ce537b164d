"""Heron: video analytics on Kubernetes."""
