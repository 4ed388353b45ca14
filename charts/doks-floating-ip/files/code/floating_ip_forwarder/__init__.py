"""The event forwarder: watches the cluster and tells the reconcile function which annotated
Services may need their reserved IP moved.

Pure parts (projections, index, coalescer, backoff, election, cloudevent, config) take plain
data and return plain data; the I/O parts (kube_client, watcher, sender, dispatcher, lease,
ops_server, app) are thin and wire them together. Only the standard library is used, so the
image needs no packages and stays small in memory.
"""
