"""``make demo``: the whole system on this machine, narrated, then stopped.

The real control plane (etcd + kube-apiserver), the DigitalOcean API and metadata
imitations, the reconcile function under functions-framework (over HTTPS, as on
DigitalOcean Functions), the event forwarder and, for every pod, the anchor-IP annotator as
its init container. The demo plays only what a bare control plane lacks (scheduler, kubelet
with its Lease renewals, node lifecycle and EndpointSlice controllers); every change reaches
the function through the forwarder, as in production. Its pods' addresses are not on this
machine's network, so the forwarder runs with ``NODE_PROBES=off``: a node that loses power is
found by its kubelet Lease alone (``NODE_LEASE_STALE_AFTER`` shortened to 4 s).

Run it with ``make demo`` (the venv puts the Makefile's SOURCE_ROOTS on the import path), or
``.venv/bin/python -m demo --help`` from the repository root.
"""
