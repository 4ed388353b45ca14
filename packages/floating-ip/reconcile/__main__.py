"""DigitalOcean Functions loads this file: the code itself lives in ``floating_ip`` (from
``lib/``, copied into the zip by ``.include``)."""

from floating_ip.entry_functions import main

__all__ = ["main"]
