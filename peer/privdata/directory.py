"""The other peers this peer exchanges private data with, per channel, and dialling them.

Known peers come from the channel config's anchor peers (their organisation is the
anchor's; an endpoint may be redirected by `gossip.address_overrides`), from
`gossip.peers` (address and MSP id) and from `gossip.bootstrap` (peers of this
peer's own organisation). This peer's own address is left out. Over TLS a peer is
dialled trusting only its organisation's TLS CAs from the channel config (plus
`gossip.tls_root_cas`), presenting this peer's TLS pair for mutual TLS.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import grpc

from common.channelconfig import ChannelConfig
from common.tls import TlsFiles
from peer.config import GossipSettings, KnownPeer

__all__ = ["PeerDirectory"]


class PeerDirectory:
    """Known peers and cached gRPC channels to them (see the module docstring)."""

    def __init__(
        self,
        settings: GossipSettings,
        *,
        mspid: str,
        tls: TlsFiles | None,
        max_message_bytes: int,
    ) -> None:
        self._settings = settings
        self._mspid = mspid
        self._tls = tls
        self._options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        self._own: set[str] = set()
        self._dialled: dict[str, grpc.aio.Channel] = {}

    def set_own_address(self, address: str) -> None:
        """This peer's listener: never a target of its own pushes and pulls."""
        self._own.add(address)

    def peers(self, config: ChannelConfig) -> list[KnownPeer]:
        """The other known peers of the channel, each address once, in random order."""
        found: dict[str, KnownPeer] = {}
        overrides = self._settings.address_overrides
        for mspid, org in sorted(config.application_orgs.items()):
            for anchor in org.anchor_peers:
                address = overrides.get(str(anchor), str(anchor))
                found.setdefault(address, KnownPeer(address=address, mspid=mspid))
        for peer in self._settings.peers:
            found.setdefault(peer.address, peer)
        for address in self._settings.bootstrap:
            found.setdefault(address, KnownPeer(address=address, mspid=self._mspid))
        result = [
            peer
            for address, peer in found.items()
            if address not in self._own and peer.mspid in config.application_orgs
        ]
        random.shuffle(result)
        return result

    def members(
        self, config: ChannelConfig, mspids: frozenset[str]
    ) -> Sequence[KnownPeer]:
        """The known peers of the given organisations."""
        return [peer for peer in self.peers(config) if peer.mspid in mspids]

    def channel(self, config: ChannelConfig, peer: KnownPeer) -> grpc.aio.Channel:
        """A (cached) gRPC channel to `peer`."""
        dialled = self._dialled.get(peer.address)
        if dialled is None:
            dialled = self._dial(config, peer)
            self._dialled[peer.address] = dialled
        return dialled

    async def close(self) -> None:
        dialled, self._dialled = list(self._dialled.values()), {}
        for channel in dialled:
            await channel.close(None)

    def _dial(self, config: ChannelConfig, peer: KnownPeer) -> grpc.aio.Channel:
        if self._tls is None:
            return grpc.aio.insecure_channel(peer.address, options=self._options)
        roots: list[bytes] = []
        org = config.application_orgs.get(peer.mspid)
        if org is not None:
            msp_config = org.msp.to_config()
            roots.extend(msp_config.tls_root_certs)
            roots.extend(msp_config.tls_intermediate_certs)
        roots.extend(path.read_bytes() for path in self._settings.tls_root_cas)
        key = cert = None
        if self._tls.cert is not None and self._tls.key is not None:
            key, cert = self._tls.key.read_bytes(), self._tls.cert.read_bytes()
        credentials = grpc.ssl_channel_credentials(
            root_certificates=b"".join(roots) or None,
            private_key=key,
            certificate_chain=cert,
        )
        return grpc.aio.secure_channel(peer.address, credentials, options=self._options)
