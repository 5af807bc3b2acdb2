"""Small consortium documents for the spec tests, and the checks they share.

A test module keeps its own valid `BASE` document (built from `hospital_a()` and
`commission()` where it needs no more than them) and parses copies changed in one place
with `parse_changed`; for each of its invalid cases `assert_config_error` checks that
the ConfigError names the file, a line and what was wrong.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from common.errors import ConfigError
from network.spec import ConsortiumSpec, parse_spec

Document = dict[str, Any]
Change = Callable[[Document], object]


def hospital_a(**changes: Any) -> Document:
    """Hospital A with peer0 on 127.0.0.1:7051 and an Admin; `changes` replace or add keys."""
    organization: Document = {
        "name": "Hospital A",
        "mspid": "HospitalAMSP",
        "domain": "hospital-a.example.com",
        "peers": [{"name": "peer0", "host": "127.0.0.1", "port": 7051}],
        "users": [{"name": "Admin", "admin": True}],
    }
    organization.update(changes)
    return organization


def commission() -> Document:
    """The Health Commission with orderer0 on 127.0.0.1:7050 and an Admin."""
    return {
        "name": "Health Commission",
        "mspid": "HealthCommissionMSP",
        "domain": "commission.example.com",
        "orderers": [{"name": "orderer0", "host": "127.0.0.1", "port": 7050}],
        "users": [{"name": "Admin", "admin": True}],
    }


def parse_changed(
    base: Document, change: Change | None = None, *, source: str
) -> ConsortiumSpec:
    """Parse a deep copy of `base` after applying `change` to it."""
    document = copy.deepcopy(base)
    if change is not None:
        change(document)
    return parse_spec(yaml.safe_dump(document, sort_keys=False), source=source)


def org(document: Document, index: int) -> dict[str, Any]:
    organization: dict[str, Any] = document["organizations"][index]
    return organization


def assert_config_error(
    read: Callable[[], object], *, source: str, fragment: str
) -> None:
    """`read()` raises a ConfigError naming `source`, a line and `fragment`."""
    with pytest.raises(ConfigError) as raised:
        read()

    message = str(raised.value)
    assert message.startswith(f"{source}, line "), message
    assert fragment in message
