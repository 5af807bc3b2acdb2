"""MEDLEDGER_LOGGING_SPEC sets a node's log levels at start, as FABRIC_LOGGING_SPEC does."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from common.errors import ConfigError
from common.logspec import LOG_LEVELS, parse_logspec
from network.cli import LOGGING_SPEC_VARIABLE, configure_logging, main


@pytest.fixture(autouse=True)
def restored_levels() -> Iterator[None]:
    root = logging.getLogger().level
    yield
    LOG_LEVELS.activate(parse_logspec(logging.getLevelName(root).lower()))


def test_the_variable_sets_the_default_and_a_module_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(LOGGING_SPEC_VARIABLE, "peer.endorser=debug:warning")

    configure_logging()

    assert str(LOG_LEVELS.spec()) == "peer.endorser=debug:warn"
    assert logging.getLogger("peer.endorser").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("orderer.node").getEffectiveLevel() == logging.WARNING


def test_a_malformed_spec_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOGGING_SPEC_VARIABLE, "peer=loud")

    with pytest.raises(ConfigError, match=f"^{LOGGING_SPEC_VARIABLE}: .*loud"):
        configure_logging()


def test_a_node_with_a_malformed_spec_does_not_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(LOGGING_SPEC_VARIABLE, "=debug")

    status = main(["orderer", "start", "-c", "no-such-orderer.yaml"])

    assert status == 1
    assert capsys.readouterr().err.startswith(
        f"medledger: error: {LOGGING_SPEC_VARIABLE}: "
    )
