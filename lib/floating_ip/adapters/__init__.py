"""Thin clients for the outside world: Kubernetes and DigitalOcean."""
