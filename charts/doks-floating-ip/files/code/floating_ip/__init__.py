"""Keeps DigitalOcean Reserved IPs on the DOKS nodes that run a Service's pods."""
