"""orderer.yaml: a full file loads into the dataclasses; mistakes name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import ConfigError
from orderer.config import load_orderer_config, parse_address

FULL = """\
name: orderer0.example.com
msp: {id: OrdererMSP, dir: msp}
listen: 127.0.0.1:0
tls:
  enabled: true
  cert: tls/server.crt
  key: tls/server.key
  client_root_cas: [tls/ca.crt]
  mutual: true
admin:
  listen: "[::1]:7053"
  tls: {enabled: false}
storage: /var/data
backend:
  type: etcd
  etcd:
    endpoints: [127.0.0.1:2379, 127.0.0.1:22379]
    tls: {enabled: true, root_cas: [etcd/ca.crt], cert: etcd/c.crt, key: etcd/c.key}
limits:
  broadcast_window: 50
  deliver_time_window: 90s
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "orderer.yaml"
    path.write_text(text)
    return path


def test_full_file_loads_with_paths_relative_to_it(tmp_path: Path) -> None:
    config = load_orderer_config(write(tmp_path, FULL))

    assert (config.name, config.mspid, config.listen) == (
        "orderer0.example.com",
        "OrdererMSP",
        "127.0.0.1:0",
    )
    assert config.msp_dir == tmp_path / "msp"
    assert config.tls is not None
    assert config.tls.mutual is True
    assert config.tls.root_cas == (tmp_path / "tls" / "ca.crt",)
    assert config.admin.tls is None
    assert config.storage == Path("/var/data")
    assert config.backend.etcd is not None
    assert config.backend.etcd.endpoints == ("127.0.0.1:2379", "127.0.0.1:22379")
    assert config.backend.etcd.prefix == "/medledger"
    assert config.backend.etcd.tls is not None
    assert config.backend.etcd.tls.cert == tmp_path / "etcd" / "c.crt"
    assert config.limits.broadcast_window == 50
    assert config.limits.deliver_time_window_s == 90.0
    assert config.limits.max_message_bytes == 100 * 1024 * 1024


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "listen: 127.0.0.1:0",
            "listen: 127.0.0.1",
            "line 3: listen: expected host:port",
        ),
        ("listen: 127.0.0.1:0", "listen: h:70000", "listen: expected host:port"),
        ("type: etcd", "type: kafka", "backend.type: expected the backend"),
        (
            "  mutual: true",
            "  mutual: yes please",
            "tls.mutual: expected true or false",
        ),
        ("storage: /var/data", "storag: /var/data", "unknown key 'storag'"),
        ("  deliver_time_window: 90s", "  deliver_time_window: soon", "a Go duration"),
        ("  broadcast_window: 50", "  broadcast_window: 0", "at least 1"),
        ("  cert: tls/server.crt\n", "", "missing key 'cert' (TLS is enabled)"),
    ],
)
def test_mistakes_name_the_key(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in FULL
    path = write(tmp_path, FULL.replace(old, new, 1))

    with pytest.raises(ConfigError, match=r"orderer\.yaml") as raised:
        load_orderer_config(path)

    assert message in str(raised.value)


def test_etcd_backend_needs_its_section(tmp_path: Path) -> None:
    text = FULL.split("backend:")[0] + "backend: {type: etcd}\n"

    with pytest.raises(ConfigError, match="missing key 'etcd'"):
        load_orderer_config(write(tmp_path, text))


def test_parse_address_accepts_names_ipv4_and_bracketed_ipv6() -> None:
    assert parse_address("orderer0:7050") == ("orderer0", 7050)
    assert parse_address("[::1]:0") == ("::1", 0)
    with pytest.raises(ValueError, match="host:port"):
        parse_address("::1:7050")
