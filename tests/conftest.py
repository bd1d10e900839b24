"""Shared fixtures: one Prefect test server per session (starting one costs 7–15 s)."""

from __future__ import annotations

import os

import pytest

# Before Prefect is imported: the test server's telemetry raced its start-up into a `database is locked`
# traceback, and tests send nothing out of the machine.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
