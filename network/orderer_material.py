"""A small solo-ordered consortium for benchmarks and tests: crypto, genesis, orderer.yaml.

`build_orderer_material(folder)` writes the crypto material of a two-organisation
consortium (a hospital with one client, a commission running orderer0), the genesis
block of one channel and returns where everything is; `write_orderer_yaml` writes an
`orderer.yaml` for orderer0; `new_envelope` signs an ENDORSER_TRANSACTION envelope
the orderer accepts (its data is opaque to the orderer).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common.msp import SigningIdentity, load_signing_identity
from common.protoutil import (
    Timestamp,
    channel_header_bytes,
    compute_tx_id,
    header_bytes,
    new_nonce,
    payload_bytes,
    sign_envelope,
    signature_header_bytes,
)
from network.cryptogen import CryptoLayout, IdentityLayout, generate_crypto
from network.genesis import build_channel_config, build_genesis_block, write_block
from network.spec import ConsortiumSpec, parse_spec
from protos.common import common_pb2

__all__ = [
    "CHANNEL",
    "HOSPITAL",
    "ORDERING",
    "OrdererMaterial",
    "build_orderer_material",
    "new_envelope",
    "small_spec",
    "write_orderer_yaml",
]

CHANNEL = "records"
HOSPITAL = "HospitalAMSP"
ORDERING = "HealthCommissionMSP"


def small_spec(
    *,
    orderer_type: str = "solo",
    max_message_count: int = 500,
    preferred_max_bytes: str = "2 MB",
    absolute_max_bytes: str = "10 MB",
    batch_timeout: str = "100ms",
    orderer_ports: Sequence[int] = (7050,),
) -> ConsortiumSpec:
    """Two organisations and one channel; the batch settings are parameters.

    One orderer node per entry of `orderer_ports` (orderer0, orderer1, …; a port of 0
    is written as 7050: the spec only names it, the node listens where it is told).
    """
    batch = {
        "max_message_count": max_message_count,
        "absolute_max_bytes": absolute_max_bytes,
        "preferred_max_bytes": preferred_max_bytes,
    }
    document = {
        "consortium": "orderer-test",
        "organizations": [
            {
                "name": "Hospital A",
                "mspid": HOSPITAL,
                "domain": "hospital-a.example.com",
                "peers": [{"name": "peer0", "host": "127.0.0.1", "port": 7051}],
                "users": [{"name": "Admin", "admin": True}, {"name": "dr-lee"}],
            },
            {
                "name": "Health Commission",
                "mspid": ORDERING,
                "domain": "commission.example.com",
                "orderers": [
                    {
                        "name": f"orderer{index}",
                        "host": "127.0.0.1",
                        "port": port or 7050,
                    }
                    for index, port in enumerate(orderer_ports)
                ],
                "users": [{"name": "Admin", "admin": True}],
            },
        ],
        "channels": [
            {
                "name": CHANNEL,
                "members": [HOSPITAL],
                "orderer": {
                    "type": orderer_type,
                    "organizations": [ORDERING],
                    "batch_size": batch,
                    "batch_timeout": batch_timeout,
                },
            }
        ],
    }
    return parse_spec(json.dumps(document), source="orderer-test spec")


@dataclass(frozen=True)
class OrdererMaterial:
    """Where the material lives, and the channel's genesis block."""

    root: Path
    spec: ConsortiumSpec
    crypto: CryptoLayout
    genesis: common_pb2.Block
    genesis_file: Path
    channel: str = CHANNEL

    @property
    def orderer(self) -> IdentityLayout:
        return self.crypto.organization(ORDERING).orderer("orderer0")

    def user(self, mspid: str, name: str) -> IdentityLayout:
        return self.crypto.organization(mspid).user(name)

    def signing_identity(self, mspid: str, name: str) -> SigningIdentity:
        return load_signing_identity(self.user(mspid, name).msp_dir, mspid=mspid)


def build_orderer_material(
    root: Path, spec: ConsortiumSpec | None = None
) -> OrdererMaterial:
    """Generate crypto and the genesis block of `spec` (default `small_spec()`)."""
    spec = spec or small_spec()
    crypto = generate_crypto(spec, root / "crypto")
    channel = spec.channels[0].name
    genesis = build_genesis_block(build_channel_config(spec, channel, crypto), channel)
    genesis_file = root / f"{channel}.block"
    write_block(genesis_file, genesis)
    return OrdererMaterial(root, spec, crypto, genesis, genesis_file, channel)


def write_orderer_yaml(
    path: Path,
    material: OrdererMaterial,
    *,
    storage: Path,
    tls: bool = True,
    mutual_tls: bool = False,
    admin_tls: bool = False,
    listen: str = "127.0.0.1:0",
    admin_listen: str = "127.0.0.1:0",
    limits: dict[str, object] | None = None,
) -> Path:
    """Write an orderer.yaml for orderer0 (JSON is YAML); returns `path`."""
    orderer = material.orderer
    tls_block: dict[str, object] = {
        "enabled": True,
        "cert": str(orderer.tls_cert),
        "key": str(orderer.tls_key),
        "client_root_cas": [
            str(organization.tlsca_cert)
            for organization in material.crypto.organizations
        ],
        "mutual": mutual_tls,
    }
    document: dict[str, object] = {
        "name": orderer.name,
        "msp": {"id": ORDERING, "dir": str(orderer.msp_dir)},
        "listen": listen,
        "tls": tls_block if tls else {"enabled": False},
        "admin": {
            "listen": admin_listen,
            "tls": {**tls_block, "mutual": True} if admin_tls else {"enabled": False},
        },
        "storage": str(storage),
        "backend": {"type": "solo"},
    }
    if limits:
        document["limits"] = limits
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
    return path


def new_envelope(
    signer: SigningIdentity,
    *,
    channel: str = CHANNEL,
    data: bytes = b"",
    header_type: int = common_pb2.ENDORSER_TRANSACTION,
    tx_id: str | None = None,
    timestamp: Timestamp | None = None,
) -> bytes:
    """A signed envelope with a correct tx id (unless `tx_id` is given)."""
    nonce = new_nonce()
    creator = signer.serialized
    channel_header = channel_header_bytes(
        header_type=header_type,
        channel_id=channel,
        tx_id=compute_tx_id(nonce=nonce, creator=creator) if tx_id is None else tx_id,
        timestamp=timestamp or Timestamp.now(),
    )
    header = header_bytes(
        channel_header=channel_header,
        signature_header=signature_header_bytes(creator=creator, nonce=nonce),
    )
    payload = payload_bytes(header=header, data=data)
    return sign_envelope(payload, signer.sign).SerializeToString()
