"""Admin calls the launcher makes: channel participation on orderers, join/list on peers.

Orderers: the participation REST API (`GET`/`POST /participation/v1/channels`), over
mutual TLS with an admin's TLS client pair when TLS is on, as osnadmin does. Peers: the
signed admin commands of `peer.admin`. Every call has a deadline, and every failure is
a `LaunchError` naming the node.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc

from common.msp import SigningIdentity, load_signing_identity
from common.tls import TlsFiles, client_ssl_context
from network.cryptogen import CryptoLayout
from network.launcher import LaunchError
from network.plan import Plan
from network.spec import NodeSpec, OrganizationSpec
from peer.admin import AdminTarget, join_channel, list_channels

__all__ = [
    "OrdererAdmin",
    "PeerAdmin",
    "admin_identity",
    "join_orderer",
    "join_peer",
    "orderer_admin",
    "orderer_heights",
    "participation_session",
    "peer_admin",
    "peer_heights",
]

PARTICIPATION_PATH = "/participation/v1/channels"
TIMEOUT_S = 30.0


@dataclass(frozen=True, kw_only=True)
class OrdererAdmin:
    """An orderer's participation API: its address and, with TLS, the admin's pair."""

    name: str
    address: str
    tls: TlsFiles | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.address}{PARTICIPATION_PATH}"


@dataclass(frozen=True, kw_only=True)
class PeerAdmin:
    """A peer's admin service and the admin identity that signs commands to it."""

    name: str
    address: str
    signer: SigningIdentity
    tls_ca: Path | None = None


def orderer_admin(
    plan: Plan, crypto: CryptoLayout, orderer: NodeSpec, address: str
) -> OrdererAdmin:
    """The participation API of `orderer`, as its organisation's first admin calls it."""
    organization = plan.organization_of(orderer)
    tls = None
    if plan.settings.tls:
        layout = crypto.organization(organization.mspid)
        user = layout.user(organization.admins[0].name)
        tls = TlsFiles(
            cert=user.tls_cert, key=user.tls_key, root_cas=(layout.tlsca_cert,)
        )
    return OrdererAdmin(name=orderer.full_name, address=address, tls=tls)


def peer_admin(
    plan: Plan, crypto: CryptoLayout, peer: NodeSpec, address: str
) -> PeerAdmin:
    """The admin service of `peer`, commands signed by its organisation's first admin."""
    organization = plan.organization_of(peer)
    layout = crypto.organization(organization.mspid)
    return PeerAdmin(
        name=peer.full_name,
        address=address,
        signer=admin_identity(crypto, organization),
        tls_ca=layout.tlsca_cert if plan.settings.tls else None,
    )


def admin_identity(
    crypto: CryptoLayout, organization: OrganizationSpec
) -> SigningIdentity:
    """The signing identity of the organisation's first admin user."""
    layout = crypto.organization(organization.mspid)
    admin = layout.user(organization.admins[0].name)
    return load_signing_identity(admin.msp_dir, mspid=organization.mspid)


async def orderer_heights(orderer: OrdererAdmin) -> dict[str, int]:
    """The channels the orderer has joined, with their heights.

    Raises:
        LaunchError: the API is unreachable or answers with an error.
    """
    listing = await _get_json(orderer, orderer.url)
    entries = listing.get("channels") or []
    if not isinstance(entries, list):
        raise LaunchError(f"{orderer.name}: GET {orderer.url}: 'channels' is no list")
    heights: dict[str, int] = {}
    for entry in entries:
        name = str(entry["name"]) if isinstance(entry, dict) else ""
        info = await _get_json(orderer, f"{orderer.url}/{name}")
        height = info.get("height", 0)
        heights[name] = height if isinstance(height, int) else 0
    return heights


async def join_orderer(
    orderer: OrdererAdmin, genesis_block: bytes, *, channel: str
) -> int:
    """Join the orderer to the channel of `genesis_block`; returns its height.

    Raises:
        LaunchError: the orderer refused (the message carries its answer).
    """
    form = aiohttp.FormData()
    form.add_field(
        "config-block",
        genesis_block,
        filename=f"{channel}.block",
        content_type="application/octet-stream",
    )
    try:
        async with (
            participation_session(orderer) as session,
            session.post(orderer.url, data=form) as response,
        ):
            text = await response.text()
            if response.status != 201:
                raise LaunchError(
                    f"{orderer.name}: joining channel {channel} failed: "
                    f"HTTP {response.status} {_error_text(text)}"
                )
            return int(json.loads(text).get("height", 0))
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        raise LaunchError(
            f"{orderer.name}: joining channel {channel}: {error}"
        ) from None


async def peer_heights(peer: PeerAdmin) -> dict[str, int]:
    """The channels the peer has joined, with their heights.

    Raises:
        LaunchError: the peer refused or is unreachable.
    """
    try:
        response = await list_channels(_target(peer), signer=peer.signer)
    except grpc.aio.AioRpcError as error:
        raise LaunchError(
            f"{peer.name}: listing channels: {error.code().name}: {error.details()}"
        ) from None
    return {summary.channel_id: int(summary.height) for summary in response.channels}


async def join_peer(peer: PeerAdmin, genesis_block: bytes, *, channel: str) -> int:
    """Join the peer to the channel of `genesis_block`; returns its height.

    Raises:
        LaunchError: the peer refused or is unreachable.
    """
    try:
        response = await join_channel(
            _target(peer), signer=peer.signer, genesis_block=genesis_block
        )
    except grpc.aio.AioRpcError as error:
        raise LaunchError(
            f"{peer.name}: joining channel {channel}: {error.code().name}: "
            f"{error.details()}"
        ) from None
    return int(response.height)


def _target(peer: PeerAdmin) -> AdminTarget:
    tls = None if peer.tls_ca is None else TlsFiles(root_cas=(peer.tls_ca,))
    return AdminTarget(address=peer.address, tls=tls, timeout_s=TIMEOUT_S)


def participation_session(
    orderer: OrdererAdmin, *, timeout_s: float = TIMEOUT_S
) -> aiohttp.ClientSession:
    """An HTTP(S) session for `orderer`'s participation API that accepts JSON.

    Raises:
        ConfigError: a TLS CA file is unreadable.
        OSError: the client pair is unreadable (ssl.SSLError: not a PEM pair).
    """
    context: ssl.SSLContext | bool = (
        client_ssl_context(orderer.tls) if orderer.tls is not None else False
    )
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        headers={"Accept": "application/json"},
    )


async def _get_json(orderer: OrdererAdmin, url: str) -> dict[str, object]:
    try:
        async with (
            participation_session(orderer) as session,
            session.get(url) as response,
        ):
            text = await response.text()
            if response.status != 200:
                raise LaunchError(
                    f"{orderer.name}: GET {url}: HTTP {response.status} "
                    f"{_error_text(text)}"
                )
            document = json.loads(text)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        raise LaunchError(f"{orderer.name}: GET {url}: {error}") from None
    if not isinstance(document, dict):
        raise LaunchError(f"{orderer.name}: GET {url}: not a JSON object")
    return document


def _error_text(text: str) -> str:
    try:
        document = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(document, dict) and "error" in document:
        return str(document["error"])
    return text.strip()
