import pytest

pytest_plugins = [
    "pytester",
    "tests.ci_skips",
    "testbed.kube_fixtures",
    "testbed.metadata",
    "testbed.do_imitation.fixtures",
]

# Fixtures that start a process or a server of the bed, or build a tool from Go modules (helm):
# a test using any of them (directly or through another fixture) is marked ``bed`` and left
# out of ``make unit``'s fast loop.
_BED_FIXTURES = frozenset({"control_plane", "do_imitation_server", "metadata_service", "helm"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _BED_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.bed)
