"""``python -m floating_ip_forwarder.app``: read the environment, then run until SIGTERM."""

from __future__ import annotations

import logging
import os
import sys

from floating_ip_forwarder.app import settings, wiring
from floating_ip_forwarder.ops import json_logs


def main() -> int:
    try:
        forwarder_settings = settings.from_env(os.environ)
    except settings.ForwarderConfigError as error:
        json_logs.configure("info")
        logging.getLogger("floating_ip_forwarder").error(
            "invalid configuration", extra={"problems": error.problems}
        )
        return 2
    json_logs.configure(forwarder_settings.log_level)
    return wiring.run(forwarder_settings)


if __name__ == "__main__":
    sys.exit(main())
