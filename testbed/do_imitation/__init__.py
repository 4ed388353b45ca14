"""An imitation of the DigitalOcean API for tests: stateful, over HTTPS, contract-checked.

``DoImitation`` serves it (see server.py); ``fixtures.py`` gives pytest the ``do_api``
fixture; ``python -m testbed.do_imitation`` runs it in a process of its own.
"""

from testbed.do_imitation.contract import ContractViolation
from testbed.do_imitation.faults import Fault
from testbed.do_imitation.model import Droplet
from testbed.do_imitation.requestlog import LoggedRequest
from testbed.do_imitation.server import DoImitation

__all__ = ["ContractViolation", "DoImitation", "Droplet", "Fault", "LoggedRequest"]
