"""Watching the cluster and telling the function which Services to reconcile."""
