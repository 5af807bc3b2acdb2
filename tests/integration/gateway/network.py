"""A small real network for gateway tests: orderer, two hospitals' peers, a gateway.

`gateway_network(material, folder)` starts, in the test's event loop on 127.0.0.1:0,
a solo orderer, peer0 of Hospitals A and B (A launches the Python asset chaincode, B
dials it as a service; both dial the `secret` test chaincode of `secret_contract.py`),
joins both to `medical-records`, commits both chaincodes' definitions (default policy:
MAJORITY of the three hospitals, so A and B together) and starts Hospital A's gateway.
`write_gateway_yaml` writes the gateway's config.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.tls import TlsFiles
from gateway.client import Gateway, Identity, identity_from_msp, signer_from_msp
from gateway.config import load_gateway_config
from gateway.node import GatewayNode
from peer.admin import AdminTarget, join_channel
from peer.lifecycle import ChaincodeDefinition, default_endorsement_policy
from peer.node import PeerNode
from protos.common import common_pb2
from tests.support.orderer import broadcast, running_orderer
from tests.support.orderer import open_channel as open_orderer_channel
from tests.support.peer import (
    ASSET_PACKAGE,
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    ORDERER_ENDPOINT,
    TIMEOUT_S,
    PeerMaterial,
    asset_definition,
    asset_server,
    definition_envelope,
    launched_asset,
    running_peer,
    wait_for_height,
    write_peer_yaml,
)

__all__ = [
    "SECRET",
    "GatewayNetwork",
    "gateway_network",
    "running_gateway",
    "write_gateway_yaml",
]


SECRET = "secret"
SECRET_PACKAGE = "secret_1.0:" + hashlib.sha256(b"secret chaincode").hexdigest()
REPOSITORY = Path(__file__).resolve().parents[3]


@dataclass
class GatewayNetwork:
    material: PeerMaterial
    orderer: str
    peer_a: PeerNode
    peer_b: PeerNode
    address_a: str
    address_b: str
    gateway: GatewayNode
    gateway_address: str
    tls: bool = False

    def user_msp(self, mspid: str = HOSPITAL_A, name: str = "dr-lee") -> Path:
        return self.material.orderer.user(mspid, name).msp_dir

    def identity(self, mspid: str = HOSPITAL_A, name: str = "dr-lee") -> Identity:
        return identity_from_msp(self.user_msp(mspid, name), mspid)

    def connect(self, mspid: str = HOSPITAL_A, name: str = "dr-lee") -> Gateway:
        msp = self.user_msp(mspid, name)
        return Gateway.connect(
            self.gateway_address,
            identity_from_msp(msp, mspid),
            signer_from_msp(msp, mspid),
            tls=self.material.tls_ca(HOSPITAL_A) if self.tls else None,
        )

    async def wait_for_height(self, height: int) -> None:
        for node in (self.peer_a, self.peer_b):
            await wait_for_height(node, height)


def write_gateway_yaml(
    path: Path,
    material: PeerMaterial,
    *,
    peers: Sequence[tuple[str, str]],
    orderer_address: str,
    mspid: str = HOSPITAL_A,
    tls: bool = False,
    extra: dict[str, object] | None = None,
) -> Path:
    """A gateway.yaml for `mspid`'s gateway, signing as its peer0 (JSON is YAML).

    With `tls` the gateway listens with peer0's TLS pair and dials peers and orderers
    over TLS (peers trusted through their organisation's TLS CA, orderers through the
    channel config).
    """
    layout = material.peer_layout(mspid)
    document: dict[str, object] = {
        "name": f"gateway.{layout.name}",
        "msp": {"id": mspid, "dir": str(layout.msp_dir)},
        "listen": "127.0.0.1:0",
        "tls": (
            {"enabled": True, "cert": str(layout.tls_cert), "key": str(layout.tls_key)}
            if tls
            else {"enabled": False}
        ),
        "channels": [CHANNEL],
        "peers": [
            (
                {
                    "address": address,
                    "mspid": peer_mspid,
                    "tls_root_cas": [str(material.tls_ca(peer_mspid))],
                }
                if tls
                else {"address": address, "mspid": peer_mspid, "tls": False}
            )
            for address, peer_mspid in peers
        ],
        "orderers": {
            "address_overrides": {ORDERER_ENDPOINT: orderer_address},
            "tls": tls,
        },
        "timeouts": {"endorse": "10s", "broadcast": "10s"},
    }
    document.update(extra or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
    return path


@contextlib.asynccontextmanager
async def running_gateway(config_path: Path) -> AsyncIterator[tuple[GatewayNode, str]]:
    """A GatewayNode with its jobs running in this event loop; stopped on exit."""
    node = GatewayNode(load_gateway_config(config_path))
    addresses = await node.start()
    jobs = [asyncio.ensure_future(job) for job in node.jobs()]
    try:
        view = node.context.channels.get(CHANNEL)
        assert view is not None
        await view.wait_ready(TIMEOUT_S)
        yield node, addresses["grpc"]
    finally:
        await node.stop(2.0)
        for job in jobs:
            job.cancel()
        for result in await asyncio.gather(*jobs, return_exceptions=True):
            if isinstance(result, BaseException) and not isinstance(
                result, asyncio.CancelledError
            ):
                raise result


@contextlib.asynccontextmanager
async def secret_server() -> AsyncIterator[str]:
    """The `secret` test chaincode as a service; yields its address."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chaincode",
        "serve",
        "--module",
        "tests.integration.gateway.secret_contract",
        "--listen",
        "127.0.0.1:0",
        "--chaincode-id",
        SECRET_PACKAGE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPOSITORY,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(TIMEOUT_S):
            line = await process.stdout.readline()
        assert line.startswith(b"READY "), line
        yield line.decode().split()[1]
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


def secret_definition() -> ChaincodeDefinition:
    return ChaincodeDefinition(
        name=SECRET,
        version="1.0",
        sequence=1,
        endorsement_policy=default_endorsement_policy(),
    )


async def _order(
    orderer: str, envelope: bytes, material: PeerMaterial, *, tls: bool
) -> None:
    opened = open_orderer_channel(orderer, material.orderer if tls else None)
    async with opened as channel:
        [response] = await broadcast(channel, [envelope])
    assert response.status == common_pb2.SUCCESS, response.info


@contextlib.asynccontextmanager
async def gateway_network(
    material: PeerMaterial, folder: Path, *, tls: bool = False
) -> AsyncIterator[GatewayNetwork]:
    """The network of the module docstring, stopped on exit; `tls` on every gRPC link
    except the chaincode servers'."""
    async with (
        running_orderer(material.orderer, folder / "orderer", tls=tls) as (_, orderer),
        asset_server() as chaincode_address,
        secret_server() as secret_address,
    ):
        secret = {"package_id": SECRET_PACKAGE, "address": secret_address}
        grpc_orderer = orderer["grpc"]
        config_a = write_peer_yaml(
            folder / "a" / "peer.yaml",
            material,
            HOSPITAL_A,
            storage=folder / "a" / "data",
            orderer_address=grpc_orderer,
            chaincodes={"asset": launched_asset(), SECRET: secret},
            tls=tls,
        )
        config_b = write_peer_yaml(
            folder / "b" / "peer.yaml",
            material,
            HOSPITAL_B,
            storage=folder / "b" / "data",
            orderer_address=grpc_orderer,
            chaincodes={
                "asset": {"package_id": ASSET_PACKAGE, "address": chaincode_address},
                SECRET: secret,
            },
            tls=tls,
        )
        async with (
            running_peer(config_a) as (peer_a, addresses_a),
            running_peer(config_b) as (peer_b, addresses_b),
        ):
            for mspid, addresses in (
                (HOSPITAL_A, addresses_a),
                (HOSPITAL_B, addresses_b),
            ):
                await join_channel(
                    AdminTarget(
                        address=addresses["grpc"],
                        tls=TlsFiles(root_cas=(material.tls_ca(mspid),))
                        if tls
                        else None,
                    ),
                    signer=material.user(mspid, "Admin"),
                    genesis_block=material.genesis.SerializeToString(),
                )
            for height, definition in enumerate(
                (asset_definition(), secret_definition()), start=2
            ):
                await _order(
                    grpc_orderer,
                    definition_envelope(material, definition, [HOSPITAL_A, HOSPITAL_B]),
                    material,
                    tls=tls,
                )
                for node in (peer_a, peer_b):
                    await wait_for_height(node, height)
            gateway_config = write_gateway_yaml(
                folder / "gateway" / "gateway.yaml",
                material,
                peers=[
                    (addresses_a["grpc"], HOSPITAL_A),
                    (addresses_b["grpc"], HOSPITAL_B),
                ],
                orderer_address=grpc_orderer,
                tls=tls,
            )
            async with running_gateway(gateway_config) as (gateway, address):
                yield GatewayNetwork(
                    material,
                    grpc_orderer,
                    peer_a,
                    peer_b,
                    addresses_a["grpc"],
                    addresses_b["grpc"],
                    gateway,
                    address,
                    tls,
                )
