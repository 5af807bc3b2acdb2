"""Everything a gateway call needs, in one value the servicers share.

`GatewayContext` bundles the registry of peers, the channel views, the orderer
directory, the gateway's own identity (for its Deliver and ledger queries) and the
timeouts. Its helpers find a channel view, answering the right status when the channel
is not served here, and check a signed request against a channel ACL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from common.errors import IdentityError, PolicyError
from common.policies import SignedData
from common.protoutil import Signer
from gateway.channels import Channels, ChannelView
from gateway.config import GatewayTimeouts
from gateway.errors import StatusError
from gateway.orderers import OrdererDirectory
from gateway.registry import Registry

__all__ = ["DEFAULT_ACL_POLICY", "GatewayContext", "deadline"]

DEFAULT_ACL_POLICY = "/Channel/Application/Readers"
"""Fabric's default for gateway/CommitStatus and gateway/ChaincodeEvents."""

READY_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayContext:
    registry: Registry
    channels: Channels
    orderers: OrdererDirectory
    creator: bytes
    signer: Signer
    timeouts: GatewayTimeouts
    ready_timeout_s: float = READY_TIMEOUT_S

    @property
    def local_mspid(self) -> str:
        return self.registry.local_mspid

    def view(self, channel_id: str, *, missing: grpc.StatusCode) -> ChannelView:
        """The view of a served channel.

        Raises:
            StatusError: `missing` when the gateway does not serve the channel.
        """
        if not channel_id:
            raise StatusError(
                grpc.StatusCode.INVALID_ARGUMENT, "no channel ID provided"
            )
        view = self.channels.get(channel_id)
        if view is None:
            raise StatusError(
                missing, f"channel {channel_id} is not served by this gateway"
            )
        return view

    async def ready_view(
        self, channel_id: str, *, missing: grpc.StatusCode
    ) -> ChannelView:
        """The view of a served channel once it has caught up with a peer's ledger."""
        view = self.view(channel_id, missing=missing)
        await view.wait_ready(self.ready_timeout_s)
        return view

    def check_acl(self, view: ChannelView, resource: str, signed: SignedData) -> None:
        """Check a signed request against the channel policy of an ACL resource.

        Raises:
            StatusError: PERMISSION_DENIED when the signature or the policy check fails.
        """
        config = view.config
        path = config.acl_policy(resource) or DEFAULT_ACL_POLICY
        try:
            policy = config.policy_manager.get(path)
            policy.evaluate([signed], config.msp_manager)
        except (PolicyError, IdentityError) as error:
            raise StatusError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"access denied for {resource} on channel {view.channel_id}: {error}",
            ) from None


@contextlib.asynccontextmanager
async def deadline(seconds: float | None, message: str) -> AsyncIterator[None]:
    """Bound a call by the client's deadline; DEADLINE_EXCEEDED with `message` if hit."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise StatusError(grpc.StatusCode.DEADLINE_EXCEEDED, message) from None
