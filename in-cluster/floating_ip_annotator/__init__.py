"""Writes the droplet's anchor IPv4 (and droplet id) onto its own Pod or Node.

Standard library only: the image runs before every pod of the user's ingress, so it must be
small and start fast.
"""
