"""gateway.yaml: what it accepts, and errors that name the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import ConfigError
from gateway.config import load_gateway_config

GOOD = """
name: gateway.hospital-a.example.com
msp: {id: HospitalAMSP, dir: msp}
listen: 127.0.0.1:7060
tls: {enabled: true, cert: tls/server.crt, key: tls/server.key}
client_tls: {cert: tls/client.crt, key: tls/client.key}
channels: [medical-records]
peers:
  - address: 127.0.0.1:7051
    mspid: HospitalAMSP
    tls_root_cas: [tlsca.pem]
    server_name: peer0.hospital-a.example.com
  - {address: 127.0.0.1:8051, mspid: HospitalBMSP, tls: false}
orderers:
  address_overrides: {"orderer0.example.com:7050": 127.0.0.1:7050}
  endpoints: [127.0.0.1:7050]
  tls: false
timeouts: {endorse: 5s, broadcast: 1m, catch_up: 500ms}
limits: {max_message_bytes: 4096}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return path


def test_a_complete_file_loads_with_paths_relative_to_it(tmp_path: Path) -> None:
    config = load_gateway_config(write(tmp_path, GOOD))
    assert config.mspid == "HospitalAMSP"
    assert config.msp_dir == tmp_path / "msp"
    assert config.channels == ("medical-records",)
    first, second = config.peers
    assert first.tls is not None
    assert first.tls.root_cas == (tmp_path / "tlsca.pem",)
    assert first.server_name == "peer0.hospital-a.example.com"
    assert (second.mspid, second.tls) == ("HospitalBMSP", None)
    assert config.client_tls is not None
    assert config.orderers.address_overrides == {
        "orderer0.example.com:7050": "127.0.0.1:7050"
    }
    assert config.orderers.endpoints == ("127.0.0.1:7050",)
    assert config.orderer_tls is False
    assert (config.timeouts.endorse_s, config.timeouts.broadcast_s) == (5.0, 60.0)
    assert config.timeouts.catch_up_s == 0.5
    assert config.limits.max_message_bytes == 4096


def test_orderer_tls_follows_the_listener_unless_set(tmp_path: Path) -> None:
    text = GOOD.replace("  tls: false\ntimeouts", "timeouts")
    assert load_gateway_config(write(tmp_path, text)).orderer_tls is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("channels: [medical-records]", "channels: []"), "at least one channel"),
        (("    tls_root_cas: [tlsca.pem]\n", ""), "missing key 'tls_root_cas'"),
        (("listen: 127.0.0.1:7060", "listen: nowhere"), "host:port"),
        (("timeouts: {endorse: 5s", "timeouts: {endorse: soon"), "Go duration"),
        (("limits:", "limit:"), "unknown key 'limit'"),
        (("127.0.0.1:8051", "127.0.0.1:7051"), "duplicate peer address"),
        (
            ("tls: {enabled: true, cert: tls/server.crt, ", "tls: {enabled: true, "),
            "cert",
        ),
    ],
)
def test_mistakes_are_named(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(ConfigError, match=message) as raised:
        load_gateway_config(write(tmp_path, GOOD.replace(old, new, 1)))
    assert "gateway.yaml" in str(raised.value)
