"""project.yml, .env.example and the function's configuration name the same settings."""

from __future__ import annotations

import yaml

from floating_ip.config import SETTINGS
from testbed.controlplane import REPO
from testbed.deployable.deployer import build_time_env


def test_project_yml_passes_every_setting_from_the_env_file() -> None:
    project = yaml.safe_load((REPO / "project.yml").read_text())
    [package] = project["packages"]
    [function] = package["functions"]
    environment = function["environment"]
    assert set(environment) == set(SETTINGS)
    assert all(value == f"${{{key}}}" for key, value in environment.items())


def test_env_example_has_a_line_for_every_setting() -> None:
    lines = (REPO / ".env.example").read_text().splitlines()
    keys = {line.partition("=")[0] for line in lines if line and not line.startswith("#")}
    assert keys == set(SETTINGS)


def test_the_build_time_env_of_tests_and_benchmarks_names_every_setting() -> None:
    assert list(build_time_env()) == list(SETTINGS)
