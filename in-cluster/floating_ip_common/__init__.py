"""What the in-cluster parts share, standard library only: the annotation contract with the
function, Retry-After reading, and access to the Kubernetes API."""
