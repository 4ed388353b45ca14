"""project.yml, .env.example, the settings docs and the function's configuration name the same
settings, and what .env.example writes is the code's default."""

from __future__ import annotations

import yaml

from floating_ip.config import SETTINGS, Config
from testbed.controlplane import REPO
from testbed.deployable.deployer import build_time_env
from tools.docs_tables import FUNCTION_REQUIRED_ENV, function_required, function_settings


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


def test_the_env_examples_optional_values_are_the_code_defaults() -> None:
    """.env.example writes the optional settings out (the deployer refuses an empty line):
    each must mean what leaving it out means, so the defaults live in the code only."""
    lines = (REPO / ".env.example").read_text().splitlines()
    written = {
        key: value
        for key, _, value in (line.partition("=") for line in lines)
        if value and not key.startswith("#")
    }
    assert {"DRY_RUN", "NAMESPACES", "DIGITALOCEAN_API_URL", "UNASSIGN_UNCLAIMED"} <= set(written)
    defaults = Config.from_env(FUNCTION_REQUIRED_ENV)
    for key, value in written.items():
        assert Config.from_env({**FUNCTION_REQUIRED_ENV, key: value}) == defaults, key


def test_the_settings_docs_have_a_row_for_every_setting() -> None:
    """docs/settings.md's table of the function is generated from Config: one row each."""
    rows = [setting.variable for setting in function_settings()]
    assert sorted(rows) == sorted(SETTINGS)
    assert function_required() == set(FUNCTION_REQUIRED_ENV)
