"""The event forwarder: watches the cluster and tells the reconcile function which annotated
Services may need their reserved IP moved. ``python -m floating_ip_forwarder.app`` runs it.

One subpackage per concern, each shipped as its own ConfigMap (``floating_ip_forwarder``
itself has no ``__init__``: it is only the folder they share):

- ``app``: settings from the environment, and the wiring of the parts below;
- ``forwarding``: watchers → index → coalescer → dispatcher → sender (the CloudEvents);
- ``election``: which replica leads, over a Lease;
- ``dead_nodes``: TCP probes and kubelet Leases → suspicions the function reads;
- ``ops``: logs, metrics, health.

Pure parts (projections, index, coalescer, delivery, lease_rules, suspicion, cloudevent,
settings) take plain data and return plain data; the I/O parts are thin. Only the standard
library is used, so the image needs no packages and stays small in memory.
"""
