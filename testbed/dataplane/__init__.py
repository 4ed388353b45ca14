"""The bed's data path: nodes, pods and clients as network namespaces, a real kube-proxy on
each node, and an imitation of the provider's edge that delivers reserved IPs."""
