"""One forwarder replica leads: election over a coordination.k8s.io Lease."""
