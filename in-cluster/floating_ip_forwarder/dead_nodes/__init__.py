"""Seeing a node die before Kubernetes does: probes, suspicion, and the suspicions ConfigMap."""
