"""What a local network runs: the spec with every section read, checked and decided.

`make_plan` reads all sections of the consortium spec (organisations, channels,
chaincodes, TLS, etcd), checks that no two listeners share a port (including ports
the spec implies, such as an orderer's admin port) and applies the orderer type each
channel is actually run with: `decide_orderer_types` keeps etcd only where etcd is
installed (and not refused), else orders the channel with solo on its first consenter.
A `Plan` also says where everything lives in the work directory:

    WORKDIR/state.json                 nodes, PIDs, addresses, decisions (network.launcher)
    WORKDIR/crypto/organizations/...   MSP and TLS material (network.cryptogen)
    WORKDIR/channels/<channel>.block   genesis blocks
    WORKDIR/nodes/<node>/              its YAML config and its ledger (data/)
    WORKDIR/logs/<node>.log            stdout and stderr of each process
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import ConfigError
from network.launcher import NetworkState
from network.spec import (
    ConsortiumSpec,
    GatewaySpec,
    NodeSpec,
    OrganizationSpec,
    load_spec,
)
from network.spec_chaincodes import ChaincodeSpec, read_chaincodes
from network.spec_channels import ChannelSpec, OrdererType
from network.spec_network import (
    NetworkSettings,
    check_listeners,
    listeners,
    read_network_settings,
)

__all__ = ["Plan", "Progress", "decide_orderer_types", "load_plan", "make_plan"]

Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The spec with every section read, and what this machine will run."""

    spec: ConsortiumSpec
    settings: NetworkSettings
    channels: tuple[ChannelSpec, ...]
    """With each channel's orderer type as it is actually run."""
    chaincodes: tuple[ChaincodeSpec, ...]
    workdir: Path
    python: str = sys.executable

    @property
    def source(self) -> str:
        return str(self.spec.source or "the consortium spec")

    @property
    def uses_etcd(self) -> bool:
        return any(c.orderer.type is OrdererType.ETCD for c in self.channels)

    @property
    def crypto_dir(self) -> Path:
        return self.workdir / "crypto"

    def block_file(self, channel: str) -> Path:
        return self.workdir / "channels" / f"{channel}.block"

    def node_dir(self, name: str) -> Path:
        return self.workdir / "nodes" / name

    def log_file(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def channel(self, name: str) -> ChannelSpec:
        """A channel as it is run (KeyError when there is none)."""
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise KeyError(name)

    def organization_of(self, node: NodeSpec | GatewaySpec) -> OrganizationSpec:
        """The organisation a node belongs to (by its domain)."""
        for organization in self.spec.organizations:
            if organization.domain == node.domain:
                return organization
        raise KeyError(node.full_name)

    def find_node(self, full_name: str) -> tuple[OrganizationSpec, NodeSpec] | None:
        """The peer or orderer with this full name, with its organisation."""
        for organization in self.spec.organizations:
            for node in organization.nodes:
                if node.full_name == full_name:
                    return organization, node
        return None

    def member_channels(self, organization: OrganizationSpec) -> list[ChannelSpec]:
        """The channels the organisation is a member of."""
        return [c for c in self.channels if organization.mspid in c.members]

    def channels_ordered_by(self, orderer: NodeSpec) -> list[ChannelSpec]:
        """The channels this orderer is a consenter of."""
        return [
            channel
            for channel in self.channels
            if any(c.full_name == orderer.full_name for c in channel.orderer.consenters)
        ]


@dataclass(frozen=True)
class _EffectiveSpec(ConsortiumSpec):
    """The spec with some channels replaced (etcd channels run with solo)."""

    overrides: Mapping[str, ChannelSpec] = field(
        default_factory=dict, hash=False, compare=False
    )

    @property
    def channels(self) -> tuple[ChannelSpec, ...]:
        return tuple(self.overrides.get(c.name, c) for c in super().channels)


def make_plan(
    spec: ConsortiumSpec,
    *,
    workdir: Path,
    orderer_types: Mapping[str, str],
    python: str = sys.executable,
) -> Plan:
    """Read every section and apply the orderer types decided for the channels.

    Raises:
        ConfigError: a section is wrong, two listeners share a port, or an orderer
            would need both backends.
    """
    settings = read_network_settings(spec)
    overrides = {
        channel.name: _as_solo(channel)
        for channel in spec.channels
        if orderer_types.get(channel.name) == OrdererType.SOLO
        and channel.orderer.type is OrdererType.ETCD
    }
    effective = _EffectiveSpec(
        spec.name, spec.organizations, spec.source, spec.reserved, overrides
    )
    plan = Plan(
        spec=effective,
        settings=settings,
        channels=effective.channels,
        chaincodes=read_chaincodes(spec),
        workdir=workdir,
        python=python,
    )
    check_listeners(
        listeners(spec, etcd=settings.etcd if plan.uses_etcd else None),
        source=plan.source,
    )
    _check_backends(plan)
    return plan


def load_plan(state: NetworkState) -> Plan:
    """The plan of a recorded network, from the spec file `up` was given.

    Raises:
        ConfigError: the spec file is gone or no longer valid.
    """
    return make_plan(
        load_spec(Path(state.spec)),
        workdir=state.workdir,
        orderer_types=state.orderer_types,
    )


def decide_orderer_types(
    channels: Sequence[ChannelSpec], *, solo: bool, progress: Progress
) -> dict[str, str]:
    """Each channel's orderer type for this machine, decided once."""
    have_etcd = shutil.which("etcd") is not None
    types: dict[str, str] = {}
    for channel in channels:
        kind = channel.orderer.type
        if kind is OrdererType.ETCD and (solo or not have_etcd):
            why = "as asked" if solo else "etcd is not installed"
            progress(
                f"channel {channel.name}: ordered by solo on "
                f"{channel.orderer.consenters[0].full_name} ({why}; the spec asks "
                "for an etcd cluster)"
            )
            kind = OrdererType.SOLO
        types[channel.name] = str(kind)
    return types


def _as_solo(channel: ChannelSpec) -> ChannelSpec:
    orderer = dataclasses.replace(
        channel.orderer,
        type=OrdererType.SOLO,
        consenters=channel.orderer.consenters[:1],
    )
    return dataclasses.replace(channel, orderer=orderer)


def _check_backends(plan: Plan) -> None:
    """An orderer runs one backend, so all its channels must share the type."""
    seen: dict[str, tuple[OrdererType, str]] = {}
    for channel in plan.channels:
        for consenter in channel.orderer.consenters:
            kind, first = seen.setdefault(
                consenter.full_name, (channel.orderer.type, channel.name)
            )
            if kind is not channel.orderer.type:
                raise ConfigError(
                    f"{plan.source}: orderer {consenter.full_name} orders channel "
                    f"{first} with {kind} and channel {channel.name} with "
                    f"{channel.orderer.type}; one orderer runs one backend"
                )
