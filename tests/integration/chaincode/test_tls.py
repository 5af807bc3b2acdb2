"""Both modes over mutual TLS, with certificates issued by a test CA."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from chaincode import (
    ChaincodeServer,
    ClientTls,
    ContractChaincode,
    ServerTls,
    StreamClosedError,
    serve_peer,
)
from common.crypto import PrivateKey
from common.crypto.issue import ExtendedKeyUsage, Subject, issue_ca, issue_certificate
from tests.unit.chaincode.fakepeer import FakePeer
from tests.unit.chaincode.scenario_contract import ScenarioContract
from tests.unit.chaincode.scenarios import put_get_delete

NOW = datetime.now(UTC)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Pki:
    ca: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes

    def server(self) -> ServerTls:
        return ServerTls(
            self.server_cert, self.server_key, client_root_certificate=self.ca
        )

    def client(self) -> ClientTls:
        return ClientTls(
            root_certificate=self.ca,
            client_key=self.client_key,
            client_certificate=self.client_cert,
        )


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca_key = PrivateKey.generate()
    ca = issue_ca(
        Subject("tlsca.test"), key=ca_key, not_before=NOW - DAY, not_after=NOW + DAY
    )
    keys = {name: PrivateKey.generate() for name in ("server", "client")}
    certs = {
        name: issue_certificate(
            Subject(f"{name}.test"),
            public_key=keys[name].public_key,
            issuer_cert=ca,
            issuer_key=ca_key,
            not_before=NOW - DAY,
            not_after=NOW + DAY,
            san_dns=["localhost"],
            san_ips=["127.0.0.1"],
            ext_key_usage=[ExtendedKeyUsage.SERVER_AUTH, ExtendedKeyUsage.CLIENT_AUTH],
        )
        for name in keys
    }
    return Pki(
        ca=ca.pem,
        server_cert=certs["server"].pem,
        server_key=keys["server"].to_pem(),
        client_cert=certs["client"].pem,
        client_key=keys["client"].to_pem(),
    )


async def test_dial_mode_with_mutual_tls(pki: Pki) -> None:
    chaincode = ContractChaincode([ScenarioContract()])
    async with FakePeer() as peer, asyncio.TaskGroup() as group:
        address = await peer.start_server(tls=pki.server())
        group.create_task(
            serve_peer(
                chaincode,
                peer_address=address,
                chaincode_id="scenario:1",
                tls=pki.client(),
            )
        )
        await peer.wait_registered("scenario")
        await put_get_delete(peer)
        await peer.stop_server()


async def test_server_mode_with_mutual_tls(pki: Pki) -> None:
    chaincode = ContractChaincode([ScenarioContract()])
    server = ChaincodeServer(
        chaincode, chaincode_id="scenario:1", address="127.0.0.1:0", tls=pki.server()
    )
    address = await server.start()
    try:
        async with FakePeer() as peer:
            await peer.connect(address, tls=pki.client())
            await put_get_delete(peer)
    finally:
        await server.stop(0)


async def test_plaintext_chaincode_cannot_register_with_a_tls_peer(pki: Pki) -> None:
    chaincode = ContractChaincode([ScenarioContract()])
    async with FakePeer() as peer:
        address = await peer.start_server(tls=pki.server())
        with pytest.raises(StreamClosedError, match="could not register"):
            await serve_peer(
                chaincode,
                peer_address=address,
                chaincode_id="scenario:1",
                register_timeout_s=5,
            )
