"""``python -m floating_ip_forwarder``: read the environment, then run until SIGTERM."""

from __future__ import annotations

import logging
import os
import sys

from floating_ip_forwarder import app, config, logs


def main() -> int:
    try:
        settings = config.from_env(os.environ)
    except config.ForwarderConfigError as error:
        logs.configure("info")
        logging.getLogger("floating_ip_forwarder").error(
            "invalid configuration", extra={"problems": error.problems}
        )
        return 2
    logs.configure(settings.log_level)
    return app.run(settings)


if __name__ == "__main__":
    sys.exit(main())
