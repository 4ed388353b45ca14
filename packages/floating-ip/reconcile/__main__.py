"""DigitalOcean Functions loads this file: the code itself lives in ``floating_ip`` (from
``lib/``) and ``floating_ip_common`` (from ``in-cluster/``), copied into the zip by
``.include``."""

from floating_ip.entry_digitalocean_functions import main

__all__ = ["main"]
