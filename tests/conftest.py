"""Session-wide test options: the random seed, and strictness for interop prerequisites."""

from __future__ import annotations

import os
import random

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--seed",
        type=int,
        default=None,
        help="seed for randomised tests (default: a fresh one, printed in the header)",
    )


def pytest_configure(config: pytest.Config) -> None:
    seed = config.getoption("--seed")
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    config.stash[SEED_KEY] = seed


def pytest_report_header(config: pytest.Config) -> str:
    return f"medledger random seed: {config.stash[SEED_KEY]} (rerun with --seed)"


SEED_KEY = pytest.StashKey[int]()


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """The run's seed; tests that draw random numbers use it and print it on failure."""
    value = request.config.stash[SEED_KEY]
    print(f"seed={value}")
    return value


def skip_or_fail(reason: str) -> None:
    """Skip with a visible reason, unless CI demands every prerequisite be present.

    `.ci/run` sets MEDLEDGER_REQUIRE_ALL=1 so that a missing tool fails the run
    instead of quietly skipping the tests that need it.
    """
    if os.environ.get("MEDLEDGER_REQUIRE_ALL") == "1":
        pytest.fail(f"prerequisite missing in CI: {reason}")
    pytest.skip(reason)
