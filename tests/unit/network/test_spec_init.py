"""Unit tests for the init keys of a chaincode in the consortium YAML (network.spec_chaincodes).

Method: the small valid document of test_spec_chaincodes, changed one key at a time,
and the hospital example, which initializes the asset chaincode.
"""

from __future__ import annotations

import json

import pytest

from common.errors import ConfigError
from network.spec import load_spec
from network.spec_chaincodes import read_chaincodes
from tests.unit.example_channel import EXAMPLE
from tests.unit.network.test_spec_chaincodes import chaincode, read


def test_init_defaults_to_init_ledger_without_arguments() -> None:
    [spec] = read(lambda d: chaincode(d).update(init_required=True))

    assert (spec.init_required, spec.init_function, spec.init_args) == (
        True,
        "InitLedger",
        (),
    )


def test_init_function_and_arguments_are_read() -> None:
    [spec] = read(
        lambda d: chaincode(d).update(
            init_required=True,
            init_function="AssetTransfer:Seed",
            init_args=["4", "blue"],
        )
    )

    assert (spec.init_function, spec.init_args) == ("AssetTransfer:Seed", ("4", "blue"))


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        pytest.param(
            {"init_function": "InitLedger"},
            "chaincodes[0].init_function: init_function and init_args apply only "
            "with init_required: true",
            id="function without init_required",
        ),
        pytest.param(
            {"init_required": True, "init_function": "Init Ledger"},
            "chaincodes[0].init_function: expected a transaction function name",
            id="function with a space",
        ),
        pytest.param(
            {"init_required": True, "init_args": [1]},
            "chaincodes[0].init_args[0]: expected a text argument",
            id="number argument",
        ),
    ],
)
def test_invalid_init_keys_are_rejected(
    change: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        read(lambda d: chaincode(d).update(change))

    assert fragment in str(raised.value)


def test_the_example_initializes_asset_and_deploys_ehr_with_pair_collections() -> None:
    chaincodes = {cc.name: cc for cc in read_chaincodes(load_spec(EXAMPLE))}

    assert chaincodes["asset"].init_required
    assert chaincodes["asset"].init_function == "InitLedger"
    ehr = chaincodes["ehr"]
    assert not ehr.init_required
    shipped = json.loads((ehr.path / "collections.json").read_text())
    assert [
        (c.name, c.policy, c.required_peer_count, c.max_peer_count, c.block_to_live)
        for c in ehr.collections
    ] == [
        (
            entry["name"],
            entry["policy"],
            entry["requiredPeerCount"],
            entry["maxPeerCount"],
            entry["blockToLive"],
        )
        for entry in shipped
    ]
    assert ehr.endorsement_policy.startswith("OR('HospitalAMSP.peer'")
