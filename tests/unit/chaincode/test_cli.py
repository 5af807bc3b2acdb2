"""`python -m chaincode serve`: mode, id and TLS resolution, and module loading."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from chaincode import ContractChaincode
from chaincode.cli import build_parser, main, read_pem, serve_config
from chaincode.contracts.asset import AssetTransfer
from chaincode.errors import ServeConfigError
from chaincode.loader import load_chaincode

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
ASSET = "chaincode.contracts.asset"


def resolve(argv: list[str], environ: dict[str, str] | None = None) -> object:
    args = build_parser().parse_args(["serve", "--module", ASSET, *argv])
    return serve_config(args, environ or {})


def test_dial_mode_from_flags_and_from_fabric_environment() -> None:
    flags = resolve(["--peer-address", "peer:7052", "--chaincode-id", "asset:abc"])
    assert flags.peer_address == "peer:7052"  # type: ignore[attr-defined]
    assert flags.chaincode_id == "asset:abc"  # type: ignore[attr-defined]
    assert flags.client_tls is None  # type: ignore[attr-defined]
    environment = {"CORE_PEER_ADDRESS": "p:1", "CORE_CHAINCODE_ID_NAME": "cc:1"}
    from_env = resolve([], environment)
    assert (from_env.peer_address, from_env.chaincode_id) == ("p:1", "cc:1")  # type: ignore[attr-defined]
    override = resolve(["--chaincode-id", "mine:2"], environment)
    assert override.chaincode_id == "mine:2"  # type: ignore[attr-defined]
    fabric = resolve(["--peer.address", "p:2", "--chaincode-id-name", "cc:3"])
    assert (fabric.peer_address, fabric.chaincode_id) == ("p:2", "cc:3")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "streams"),
    [(None, 1), ("4", 4), ("0", 1), ("many", 1), ("999", 16)],
)
def test_dial_mode_streams_come_from_the_peer(value: str | None, streams: int) -> None:
    """MEDLEDGER_CHAINCODE_STREAMS (set by a medledger peer): 1..16, else 1."""
    environment = {"CORE_PEER_ADDRESS": "p:1", "CORE_CHAINCODE_ID_NAME": "cc:1"}
    if value is not None:
        environment["MEDLEDGER_CHAINCODE_STREAMS"] = value
    assert resolve([], environment).streams == streams  # type: ignore[attr-defined]


def test_server_mode_from_flags_and_from_environment() -> None:
    flags = resolve(["--listen", "0.0.0.0:9999", "--chaincode-id", "asset:abc"])
    assert flags.listen_address == "0.0.0.0:9999"  # type: ignore[attr-defined]
    assert flags.peer_address is None  # type: ignore[attr-defined]
    environment = {"CHAINCODE_SERVER_ADDRESS": "0.0.0.0:7", "CHAINCODE_ID": "cc:2"}
    from_env = resolve([], environment)
    assert (from_env.listen_address, from_env.chaincode_id) == ("0.0.0.0:7", "cc:2")  # type: ignore[attr-defined]
    dial_wins = resolve(["--peer-address", "p:1", "--chaincode-id", "x:1"], environment)
    assert dial_wins.peer_address == "p:1"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        ([], {}, "--peer-address or --listen"),
        (["--peer-address", "p:1"], {}, "CORE_CHAINCODE_ID_NAME"),
        (["--listen", "h:1"], {}, "CHAINCODE_ID"),
        (
            ["--peer-address", "p:1", "--chaincode-id", "c:1"],
            {"CORE_PEER_TLS_ENABLED": "true"},
            "root certificate",
        ),
        (
            ["--listen", "h:1", "--chaincode-id", "c:1", "--tls-cert", "/nonexistent"],
            {},
            "together",
        ),
    ],
)
def test_missing_settings_are_refused(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ServeConfigError, match=message):
        resolve(argv, environ)


def test_tls_files_in_pem_or_base64(tmp_path: Path) -> None:
    """Fabric's peer writes the client key and cert base64-encoded; both forms load."""
    root = tmp_path / "root.pem"
    root.write_bytes(PEM)
    key = tmp_path / "client.key"
    key.write_bytes(base64.b64encode(PEM))
    cert = tmp_path / "client.crt"
    cert.write_bytes(PEM)
    environment = {
        "CORE_PEER_ADDRESS": "p:1",
        "CORE_CHAINCODE_ID_NAME": "cc:1",
        "CORE_PEER_TLS_ENABLED": "TRUE",
        "CORE_PEER_TLS_ROOTCERT_FILE": str(root),
        "CORE_TLS_CLIENT_KEY_PATH": str(key),
        "CORE_TLS_CLIENT_CERT_PATH": str(cert),
    }
    config = resolve([], environment)
    tls = config.client_tls  # type: ignore[attr-defined]
    assert (tls.root_certificate, tls.client_key, tls.client_certificate) == (
        PEM,
        PEM,
        PEM,
    )
    server = resolve(
        ["--listen", "h:0", "--chaincode-id", "c:1"],
        {"CHAINCODE_TLS_CERT": str(cert), "CHAINCODE_TLS_KEY": str(key)},
    )
    assert server.server_tls.client_root_certificate is None  # type: ignore[attr-defined]
    disabled = resolve(
        ["--listen", "h:0", "--chaincode-id", "c:1"],
        {"CHAINCODE_TLS_CERT": str(cert), "CHAINCODE_TLS_DISABLED": "true"},
    )
    assert disabled.server_tls is None  # type: ignore[attr-defined]


def test_unreadable_pem_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a certificate")
    with pytest.raises(ServeConfigError, match="neither PEM"):
        read_pem(str(garbage))
    with pytest.raises(ServeConfigError, match="cannot read"):
        read_pem(str(tmp_path / "missing"))


@pytest.mark.parametrize(
    "specs",
    [
        [ASSET],
        [f"{ASSET}:AssetTransfer"],
        [f"{ASSET}:contracts"],
        [
            "chaincode.contracts.asset.contract:AssetTransfer",
            "tests.unit.chaincode.test_cli:EXTRA",
        ],
    ],
)
def test_modules_resolve_to_contracts(specs: list[str]) -> None:
    chaincode = load_chaincode(specs)
    assert isinstance(chaincode, ContractChaincode)
    assert chaincode.default_contract == "AssetTransfer"


EXTRA = AssetTransfer()
EXTRA.name = "Second"
RAW = ContractChaincode([AssetTransfer()])


def test_a_low_level_chaincode_is_served_as_is() -> None:
    assert load_chaincode(["tests.unit.chaincode.test_cli:RAW"]) is RAW


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([], "no --module"),
        (["no.such.module"], "cannot import"),
        ([f"{ASSET}:Missing"], "no attribute"),
        (["tests.unit.chaincode.test_cli:PEM"], "not a contract"),
        (["chaincode.errors"], "neither `contracts` nor `chaincode`"),
        (["tests.unit.chaincode.test_cli:RAW", ASSET], "cannot be combined"),
        ([ASSET, ASSET], "invalid contracts"),
    ],
)
def test_bad_modules_are_refused(specs: list[str], message: str) -> None:
    with pytest.raises(ServeConfigError, match=message):
        load_chaincode(specs)


def test_main_reports_configuration_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CORE_PEER_ADDRESS", "CHAINCODE_SERVER_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve", "--module", ASSET]) == 2
    assert "missing --peer-address or --listen" in capsys.readouterr().err
