"""peer.yaml: a full file reads into PeerConfig; each mistake names the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import ConfigError
from peer.config import load_peer_config

FULL = """\
name: peer0.hospital-a.example.com
msp: {id: HospitalAMSP, dir: msp}
listen: 127.0.0.1:7051
tls:
  enabled: true
  cert: tls/server.crt
  key: tls/server.key
  client_root_cas: [tls/ca.crt]
  mutual: true
chaincode_listen: 127.0.0.1:7052
storage: data
orderers:
  address_overrides: {"orderer0.example.com:7050": "127.0.0.1:17050"}
  tls_root_cas: [extra.pem]
  tls: true
  client_auth: true
chaincodes:
  execute_timeout: 5s
  startup_timeout: 1m
  peer_tls_ca: tls/ca.crt
  packages:
    asset:
      package_id: asset_1.0:abc123
      launch: [python, -m, chaincode, serve, --module, chaincode.contracts.asset]
    records:
      package_id: records_1:def456
      address: 127.0.0.1:9999
      tls: {root_cert: cc-ca.pem, client_cert: c.pem, client_key: k.pem}
limits:
  max_message_bytes: 2048
  deliver_time_window: 90s
"""

MINIMAL = """\
name: peer0
msp: {id: HospitalAMSP, dir: /abs/msp}
listen: 127.0.0.1:0
tls: {enabled: false}
storage: data
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "peer.yaml"
    path.write_text(text)
    return path


def test_a_full_file_reads_with_paths_relative_to_it(tmp_path: Path) -> None:
    config = load_peer_config(write(tmp_path, FULL))
    assert config.mspid == "HospitalAMSP"
    assert config.msp_dir == tmp_path / "msp"
    assert config.tls is not None
    assert config.tls.mutual
    assert config.tls.root_cas == (tmp_path / "tls/ca.crt",)
    assert config.chaincode_listen == "127.0.0.1:7052"
    assert config.orderers.address_overrides == {
        "orderer0.example.com:7050": "127.0.0.1:17050"
    }
    assert config.orderers.client_auth
    assert config.orderer_tls
    assert config.chaincodes.execute_timeout_s == 5.0
    assert config.chaincodes.startup_timeout_s == 60.0
    asset = config.chaincodes.packages["asset"]
    assert asset.launch[:3] == ("python", "-m", "chaincode")
    records = config.chaincodes.packages["records"]
    assert records.address == "127.0.0.1:9999"
    assert records.tls is not None
    assert records.tls.client_key == tmp_path / "k.pem"
    assert config.limits.max_message_bytes == 2048
    assert config.limits.deliver_time_window_s == 90.0


def test_defaults_of_a_minimal_file(tmp_path: Path) -> None:
    config = load_peer_config(write(tmp_path, MINIMAL))
    assert config.tls is None
    assert config.msp_dir == Path("/abs/msp")
    assert config.chaincode_listen is None
    assert not config.orderer_tls
    assert config.chaincodes.packages == {}
    assert config.limits.deliver_time_window_s == 900.0


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "listen: 127.0.0.1:0",
            "listen: nowhere",
            "line 3: listen: expected host:port",
        ),
        ("tls: {enabled: false}", "tls: {enabled: true}", "missing key 'cert'"),
        ("storage: data", "storage: data\nstorge: x", "unknown key 'storge'"),
        ("name: peer0\n", "", "missing key 'name'"),
        (
            "storage: data",
            "storage: data\nchaincodes: {packages: {asset: {package_id: 'no id'}}}",
            "chaincodes.packages.asset.package_id: expected a package id",
        ),
        (
            "storage: data",
            "storage: data\nchaincodes: {packages: {asset: {package_id: 'a:1'}}}",
            "give exactly one of 'launch'",
        ),
        (
            "storage: data",
            "storage: data\nchaincodes: {execute_timeout: soon}",
            "chaincodes.execute_timeout: expected a Go duration",
        ),
        (
            "storage: data",
            "storage: data\norderers: {address_overrides: {bad: '127.0.0.1:1'}}",
            "the endpoint 'bad' is not host:port",
        ),
    ],
)
def test_mistakes_name_the_file_and_key(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = write(tmp_path, MINIMAL.replace(old, new))
    with pytest.raises(ConfigError, match=r"peer\.yaml") as raised:
        load_peer_config(path)
    assert message in str(raised.value)
