"""The hospital example's medical-records channel, for the config and genesis unit tests.

Fixtures (session-scoped): `spec`, the example consortium; `crypto`, material generated
for it; `config`, the medical-records channel config built from both; `view`, the
typed `ChannelConfig` of that config. A test module takes the ones it needs by naming
them at module level (`crypto = example_channel.crypto`): each module then builds its
own, as when each defined them, and may replace any of them (a module with another
`spec` gets material and views of that spec).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.channelconfig import ChannelConfig
from network.cryptogen import CryptoLayout, generate_crypto
from network.genesis import build_channel_config
from network.spec import ConsortiumSpec, load_spec
from protos.common import configtx_pb2

EXAMPLE = (
    Path(__file__).parents[2] / "network" / "examples" / "hospital-consortium.yaml"
)
CHANNEL = "medical-records"
HOSPITALS = ("HospitalAMSP", "HospitalBMSP", "HospitalCMSP")
COMMISSION = "HealthCommissionMSP"


@pytest.fixture(scope="session")
def spec() -> ConsortiumSpec:
    return load_spec(EXAMPLE)


@pytest.fixture(scope="session")
def crypto(
    spec: ConsortiumSpec, tmp_path_factory: pytest.TempPathFactory
) -> CryptoLayout:
    return generate_crypto(spec, tmp_path_factory.mktemp("example-crypto"))


@pytest.fixture(scope="session")
def config(spec: ConsortiumSpec, crypto: CryptoLayout) -> configtx_pb2.Config:
    return build_channel_config(spec, CHANNEL, crypto)


@pytest.fixture(scope="session")
def view(spec: ConsortiumSpec, crypto: CryptoLayout) -> ChannelConfig:
    config = build_channel_config(spec, CHANNEL, crypto)
    return ChannelConfig.from_config(config, channel_id=CHANNEL)
