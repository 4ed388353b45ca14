"""pytest fixtures: ``do_api`` is an empty, started imitation for each test.

One server serves the whole session (the spec loads once, ~2 s); each test gets it reset.
A test fails at teardown if any request or response broke DigitalOcean's OpenAPI contract;
a test that breaks it on purpose takes the violations with ``take_contract_violations()``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.do_imitation.contract import summarise
from testbed.do_imitation.server import DoImitation


@pytest.fixture(scope="session")
def do_imitation_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DoImitation]:
    with DoImitation(tmp_path_factory.mktemp("do-imitation")) as imitation:
        yield imitation


@pytest.fixture
def do_api(do_imitation_server: DoImitation) -> Iterator[DoImitation]:
    imitation = do_imitation_server
    imitation.reset()
    try:
        yield imitation
        fail_on_contract_violations(imitation)
    finally:
        imitation.reset()


def fail_on_contract_violations(imitation: DoImitation) -> None:
    """Fail the running test if the contract was broken (and forget the violations)."""
    violations = imitation.take_contract_violations()
    if violations:
        pytest.fail(
            "the DigitalOcean API contract was broken during this test:\n" + summarise(violations),
            pytrace=False,
        )
