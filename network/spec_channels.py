"""The ``channels`` section of the consortium spec: who is on each channel, and its rules.

Each channel names its member organisations, its ordering organisations and consenters,
block cutting (batch size and timeout), capabilities, policies, anchor peers and ACLs.
Everything but the name, the members and the ordering organisations has a default, and
the defaults are those of Fabric's sample ``configtx.yaml`` (see `DEFAULT_*` below), so a
channel described here looks to Fabric tools like one made with configtxgen.

Policies are written as text. A rule that starts with ``ANY``, ``ALL`` or ``MAJORITY``
is an implicit meta policy (``MAJORITY Admins``); anything else is a signature policy
(``OR('HospitalAMSP.admin')``). Organisation policy defaults name the organisation's own
MSP id. Overrides replace single policies and keep the other defaults.

The batch timeout defaults to 250ms, not Fabric's 2s: under load, blocks are cut by
`max_message_count` or the byte limits long before the timeout, so it only decides how
long a transaction waits when traffic is light. 250ms keeps that wait short (a
commit in well under a second) while bounding timeout-cut blocks to four per second
per channel, whose fixed cost (a signature, an fsync) is small next to that.

`read_channels` validates the section against the organisations of the spec; errors are
`ConfigError`s naming the file, the line and the key path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

import yaml

from common.channelconfig import format_go_duration, keys, parse_go_duration_ns
from common.config import ConfigNode, check_unique
from common.errors import ConfigError, PolicyError
from common.policies import from_string, parse_implicit_meta
from network.spec import ConsortiumSpec, NodeSpec, OrganizationSpec

__all__ = [
    "DEFAULT_BATCH_TIMEOUT",
    "BatchSizeSpec",
    "CapabilitiesSpec",
    "ChannelOrdererSpec",
    "ChannelPolicies",
    "ChannelSpec",
    "OrdererType",
    "PolicyKind",
    "PolicyRule",
    "read_channels",
]

CHANNEL_NAME_MAX = 249
"""Fabric's limit: a channel name is shorter than 250 characters."""

DEFAULT_BATCH_TIMEOUT = "250ms"
_MEBIBYTE = 1024 * 1024
_UINT32_MAX = 0xFFFFFFFF
_BYTE_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": _MEBIBYTE, "GB": 1024 * _MEBIBYTE}

_CHANNEL_NAME = re.compile(r"[a-z][a-z0-9.-]*")
_POLICY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_BYTE_SIZE = re.compile(r"([0-9]+)\s*([KMG]?B)?", re.IGNORECASE)
_ACL_RESOURCE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
_META_RULES = ("ANY", "ALL", "MAJORITY")

_EXPECT_CHANNEL_NAME = (
    "a channel name: lower-case letters, digits, '.' and '-', starting with a letter, "
    f"at most {CHANNEL_NAME_MAX} characters (for example 'medical-records')"
)
_EXPECT_TYPE = "the orderer type 'solo' or 'etcd'"
_EXPECT_DURATION = "a Go duration greater than zero, such as '250ms', '2s' or '1m30s'"
_EXPECT_BYTES = "a size in bytes: an integer, or a number with KB, MB or GB ('10 MB')"


class OrdererType(StrEnum):
    """The ordering backend of a channel."""

    SOLO = "solo"
    ETCD = "etcd"

    @property
    def consensus_type(self) -> str:
        """`ConsensusType.type` in the channel config: etcd presents as etcdraft."""
        if self is OrdererType.ETCD:
            return keys.CONSENSUS_ETCDRAFT
        return keys.CONSENSUS_SOLO


class PolicyKind(StrEnum):
    """The two kinds of channel policy, named as configtx.yaml names them."""

    SIGNATURE = "Signature"
    IMPLICIT_META = "ImplicitMeta"


@dataclass(frozen=True)
class PolicyRule:
    """A policy as written: its kind and its rule text."""

    kind: PolicyKind
    rule: str

    @classmethod
    def parse(cls, text: str) -> PolicyRule:
        """Classify and check a rule: ``ANY``/``ALL``/``MAJORITY`` <name>, or the DSL.

        Raises:
            PolicyError: the text is not a valid rule of its kind.
        """
        if text.split(" ", 1)[0] in _META_RULES:
            parse_implicit_meta(text)
            return cls(PolicyKind.IMPLICIT_META, text)
        from_string(text)
        return cls(PolicyKind.SIGNATURE, text)

    @property
    def sub_policy(self) -> str | None:
        """For an implicit meta rule, the policy it asks of the child groups."""
        if self.kind is PolicyKind.IMPLICIT_META:
            return self.rule.split(" ", 1)[1]
        return None


PolicyMap = Mapping[str, PolicyRule]


def _rules(entries: Mapping[str, str]) -> PolicyMap:
    return MappingProxyType(
        {name: PolicyRule.parse(rule) for name, rule in entries.items()}
    )


DEFAULT_CHANNEL_POLICIES = _rules(
    {
        keys.READERS: "ANY Readers",
        keys.WRITERS: "ANY Writers",
        keys.ADMINS: "MAJORITY Admins",
    }
)
DEFAULT_APPLICATION_POLICIES = _rules(
    {
        keys.READERS: "ANY Readers",
        keys.WRITERS: "ANY Writers",
        keys.ADMINS: "MAJORITY Admins",
        keys.LIFECYCLE_ENDORSEMENT: "MAJORITY Endorsement",
        keys.ENDORSEMENT: "MAJORITY Endorsement",
    }
)
DEFAULT_ORDERER_POLICIES = _rules(
    {
        keys.READERS: "ANY Readers",
        keys.WRITERS: "ANY Writers",
        keys.ADMINS: "MAJORITY Admins",
        keys.BLOCK_VALIDATION: "ANY Writers",
    }
)


def default_application_org_policies(mspid: str) -> PolicyMap:
    """A member organisation's policies in Fabric's sample configtx.yaml."""
    return _rules(
        {
            keys.READERS: f"OR('{mspid}.admin', '{mspid}.peer', '{mspid}.client')",
            keys.WRITERS: f"OR('{mspid}.admin', '{mspid}.client')",
            keys.ADMINS: f"OR('{mspid}.admin')",
            keys.ENDORSEMENT: f"OR('{mspid}.peer')",
        }
    )


def default_orderer_org_policies(mspid: str) -> PolicyMap:
    """An ordering organisation's policies in Fabric's sample configtx.yaml."""
    return _rules(
        {
            keys.READERS: f"OR('{mspid}.member')",
            keys.WRITERS: f"OR('{mspid}.member')",
            keys.ADMINS: f"OR('{mspid}.admin')",
        }
    )


@dataclass(frozen=True)
class BatchSizeSpec:
    """When to cut a block; the defaults are Fabric's."""

    max_message_count: int = 500
    absolute_max_bytes: int = 10 * _MEBIBYTE
    preferred_max_bytes: int = 2 * _MEBIBYTE


@dataclass(frozen=True)
class ChannelOrdererSpec:
    """How a channel is ordered.

    `batch_timeout` is in Go's canonical form ("250ms", "1m30s"), as configtxgen writes
    it. `consenters` are the orderer nodes that serve the channel; for solo, exactly one.
    """

    type: OrdererType
    organizations: tuple[str, ...]
    consenters: tuple[NodeSpec, ...]
    batch_size: BatchSizeSpec = BatchSizeSpec()
    batch_timeout: str = DEFAULT_BATCH_TIMEOUT


@dataclass(frozen=True)
class CapabilitiesSpec:
    """Capabilities switched on at each level; Fabric 2.5's defaults."""

    channel: tuple[str, ...] = ("V2_0",)
    orderer: tuple[str, ...] = ("V2_0",)
    application: tuple[str, ...] = ("V2_5",)


@dataclass(frozen=True)
class ChannelPolicies:
    """Every policy of the channel, defaults filled in, per config group.

    Organisation policies are keyed by MSP id; an organisation that both is a member and
    orders has an entry in both mappings.
    """

    channel: PolicyMap = field(
        default_factory=lambda: DEFAULT_CHANNEL_POLICIES, hash=False
    )
    application: PolicyMap = field(
        default_factory=lambda: DEFAULT_APPLICATION_POLICIES, hash=False
    )
    orderer: PolicyMap = field(
        default_factory=lambda: DEFAULT_ORDERER_POLICIES, hash=False
    )
    application_orgs: Mapping[str, PolicyMap] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    orderer_orgs: Mapping[str, PolicyMap] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )


@dataclass(frozen=True)
class ChannelSpec:
    """One channel as the operator described it, with every default applied.

    `members` are the application organisations by MSP id; `anchor_peers` maps each
    member to its anchor peers (by default all its peers); `acls` maps a resource such as
    ``peer/Propose`` to a policy path.
    """

    name: str
    members: tuple[str, ...]
    orderer: ChannelOrdererSpec
    capabilities: CapabilitiesSpec = CapabilitiesSpec()
    policies: ChannelPolicies = ChannelPolicies()
    anchor_peers: Mapping[str, tuple[NodeSpec, ...]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    acls: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )


def read_channels(spec: ConsortiumSpec) -> tuple[ChannelSpec, ...]:
    """Read and check the spec's ``channels`` section (absent or null: no channels).

    Raises:
        ConfigError: naming the file, line and key path, and what was expected.
    """
    node = spec.reserved.get("channels")
    if node is None or node.is_null:
        return ()
    items = node.as_list()
    channels = tuple(_read_channel(item, spec) for item in items)
    check_unique(
        (
            (item.child("name"), channel.name)
            for item, channel in zip(items, channels, strict=True)
        ),
        what="channel name",
    )
    return channels


def _read_channel(node: ConfigNode, spec: ConsortiumSpec) -> ChannelSpec:
    fields = node.as_mapping(
        required=("name", "members", "orderer"),
        optional=("capabilities", "policies", "anchor_peers", "acls"),
    )
    name = _read_channel_name(fields["name"])
    members = _read_mspids(fields["members"], spec, what="member organisation")
    orderer = _read_orderer(fields["orderer"], spec)
    policies = _read_policies(fields.get("policies"), members, orderer.organizations)
    return ChannelSpec(
        name=name,
        members=members,
        orderer=orderer,
        capabilities=_read_capabilities(fields.get("capabilities")),
        policies=policies,
        anchor_peers=_read_anchor_peers(fields.get("anchor_peers"), spec, members),
        acls=_read_acls(fields.get("acls"), policies),
    )


def _read_channel_name(node: ConfigNode) -> str:
    name = node.as_str(pattern=_CHANNEL_NAME, expected=_EXPECT_CHANNEL_NAME)
    if len(name) > CHANNEL_NAME_MAX:
        raise node.expected(_EXPECT_CHANNEL_NAME)
    return name


def _read_mspids(
    node: ConfigNode,
    spec: ConsortiumSpec,
    *,
    what: str,
    check: Callable[[ConfigNode, OrganizationSpec], None] | None = None,
) -> tuple[str, ...]:
    items = node.as_list()
    if not items:
        raise node.error(f"expected at least one {what} (an MSP id)")
    mspids = []
    for item in items:
        organization = _organization(item, spec)
        if check is not None:
            check(item, organization)
        mspids.append(organization.mspid)
    check_unique(zip(items, mspids, strict=True), what=what)
    return tuple(mspids)


def _organization(node: ConfigNode, spec: ConsortiumSpec) -> OrganizationSpec:
    mspid = node.as_str(expected="an MSP id of an organisation of the consortium")
    try:
        return spec.organization(mspid)
    except KeyError:
        known = ", ".join(org.mspid for org in spec.organizations)
        raise node.error(
            f"no organisation has MSP id {mspid!r} (known: {known})"
        ) from None


def _read_orderer(node: ConfigNode, spec: ConsortiumSpec) -> ChannelOrdererSpec:
    fields = node.as_mapping(
        required=("organizations",),
        optional=("type", "consenters", "batch_size", "batch_timeout"),
    )
    orderer_type = OrdererType.SOLO
    if "type" in fields:
        try:
            orderer_type = OrdererType(fields["type"].as_str(expected=_EXPECT_TYPE))
        except ValueError:
            raise fields["type"].expected(_EXPECT_TYPE) from None
    organizations = _read_mspids(
        fields["organizations"],
        spec,
        what="ordering organisation",
        check=_check_has_orderers,
    )
    nodes = [
        orderer
        for mspid in organizations
        for orderer in spec.organization(mspid).orderers
    ]
    consenters = _read_consenters(fields, nodes, orderer_type)
    batch_size_node = fields.get("batch_size")
    timeout_node = fields.get("batch_timeout")
    return ChannelOrdererSpec(
        type=orderer_type,
        organizations=organizations,
        consenters=consenters,
        batch_size=(
            _read_batch_size(batch_size_node)
            if batch_size_node is not None
            else BatchSizeSpec()
        ),
        batch_timeout=(
            _read_duration(timeout_node)
            if timeout_node is not None
            else DEFAULT_BATCH_TIMEOUT
        ),
    )


def _check_has_orderers(node: ConfigNode, organization: OrganizationSpec) -> None:
    if not organization.orderers:
        raise node.error(
            f"organisation {organization.mspid} has no orderer nodes, so it cannot "
            "order a channel"
        )


def _read_consenters(
    fields: dict[str, ConfigNode], nodes: list[NodeSpec], orderer_type: OrdererType
) -> tuple[NodeSpec, ...]:
    node = fields.get("consenters")
    if node is None or node.is_null:
        if orderer_type is OrdererType.SOLO:
            return (nodes[0],)
        return tuple(nodes)
    by_name = {orderer.full_name: orderer for orderer in nodes}
    items = node.as_list()
    consenters = []
    for item in items:
        name = item.as_str(expected="an orderer node's full name")
        consenter = by_name.get(name)
        if consenter is None:
            known = ", ".join(by_name)
            raise item.error(
                f"{name!r} is not an orderer node of the channel's ordering "
                f"organisations (known: {known})"
            )
        consenters.append(consenter)
    check_unique(
        zip(items, (c.full_name for c in consenters), strict=True), what="consenter"
    )
    if orderer_type is OrdererType.SOLO and len(consenters) != 1:
        raise node.error(
            f"a solo channel has exactly one consenter, the orderer that cuts its "
            f"blocks; got {len(consenters)}"
        )
    if not consenters:
        raise node.error("expected at least one consenter")
    return tuple(consenters)


def _read_batch_size(node: ConfigNode) -> BatchSizeSpec:
    if node.is_null:
        return BatchSizeSpec()
    fields = node.as_mapping(
        optional=("max_message_count", "absolute_max_bytes", "preferred_max_bytes")
    )
    defaults = BatchSizeSpec()
    count_node = fields.get("max_message_count")
    count = (
        count_node.as_int(minimum=1, maximum=_UINT32_MAX)
        if count_node is not None
        else defaults.max_message_count
    )
    absolute = _optional_bytes(
        fields, "absolute_max_bytes", defaults.absolute_max_bytes
    )
    preferred = _optional_bytes(
        fields, "preferred_max_bytes", defaults.preferred_max_bytes
    )
    if preferred > absolute:
        where = fields.get("preferred_max_bytes") or fields.get("absolute_max_bytes")
        assert where is not None  # both defaults satisfy preferred <= absolute
        raise where.error(
            f"preferred_max_bytes ({preferred}) must not exceed absolute_max_bytes "
            f"({absolute})"
        )
    return BatchSizeSpec(count, absolute, preferred)


def _optional_bytes(fields: dict[str, ConfigNode], key: str, default: int) -> int:
    node = fields.get(key)
    return _read_bytes(node) if node is not None else default


def _read_bytes(node: ConfigNode) -> int:
    try:
        value = node.as_int(minimum=1, maximum=_UINT32_MAX)
    except ConfigError:
        text = node.as_str(expected=_EXPECT_BYTES)
        match = _BYTE_SIZE.fullmatch(text.strip())
        if match is None:
            raise node.expected(_EXPECT_BYTES) from None
        value = int(match.group(1)) * _BYTE_UNITS[(match.group(2) or "").upper()]
    if not 1 <= value <= _UINT32_MAX:
        raise node.error(f"{value} bytes is outside 1 to {_UINT32_MAX}")
    return value


def _read_duration(node: ConfigNode) -> str:
    text = node.as_str(expected=_EXPECT_DURATION)
    try:
        nanoseconds = parse_go_duration_ns(text)
    except ValueError:
        raise node.expected(_EXPECT_DURATION) from None
    if nanoseconds <= 0:
        raise node.expected(_EXPECT_DURATION)
    return format_go_duration(nanoseconds)


def _read_capabilities(node: ConfigNode | None) -> CapabilitiesSpec:
    defaults = CapabilitiesSpec()
    if node is None or node.is_null:
        return defaults
    fields = node.as_mapping(optional=("channel", "orderer", "application"))
    return CapabilitiesSpec(
        channel=_capability_names(
            fields.get("channel"), keys.CHANNEL_CAPABILITIES, defaults.channel
        ),
        orderer=_capability_names(
            fields.get("orderer"), keys.ORDERER_CAPABILITIES, defaults.orderer
        ),
        application=_capability_names(
            fields.get("application"),
            keys.APPLICATION_CAPABILITIES,
            defaults.application,
        ),
    )


def _capability_names(
    node: ConfigNode | None, known: frozenset[str], default: tuple[str, ...]
) -> tuple[str, ...]:
    if node is None:
        return default
    expected = f"one of {', '.join(sorted(known))}"
    items = [node] if isinstance(node.node, yaml.ScalarNode) else node.as_list()
    names = []
    for item in items:
        name = item.as_str(expected=f"a capability name, {expected}")
        if name not in known:
            raise item.error(f"unknown capability {name!r}; expected {expected}")
        names.append(name)
    check_unique(zip(items, names, strict=True), what="capability")
    return tuple(names)


def _read_policies(
    node: ConfigNode | None,
    members: tuple[str, ...],
    orderer_organizations: tuple[str, ...],
) -> ChannelPolicies:
    fields = (
        node.as_mapping(optional=("channel", "application", "orderer", "organizations"))
        if node is not None and not node.is_null
        else {}
    )
    overrides = _read_org_overrides(
        fields.get("organizations"), (*members, *orderer_organizations)
    )
    policies = ChannelPolicies(
        channel=_merge(DEFAULT_CHANNEL_POLICIES, fields.get("channel")),
        application=_merge(DEFAULT_APPLICATION_POLICIES, fields.get("application")),
        orderer=_merge(DEFAULT_ORDERER_POLICIES, fields.get("orderer")),
        application_orgs=MappingProxyType(
            {
                mspid: _merge(
                    default_application_org_policies(mspid), overrides.get(mspid)
                )
                for mspid in members
            }
        ),
        orderer_orgs=MappingProxyType(
            {
                mspid: _merge(default_orderer_org_policies(mspid), overrides.get(mspid))
                for mspid in orderer_organizations
            }
        ),
    )
    _check_sub_policies(policies, fields)
    return policies


def _read_org_overrides(
    node: ConfigNode | None, mspids: Iterable[str]
) -> dict[str, ConfigNode]:
    if node is None or node.is_null:
        return {}
    allowed = set(mspids)
    overrides = {}
    for mspid, child in node.as_items():
        if mspid not in allowed:
            raise child.error(
                f"{mspid!r} is not an organisation of this channel "
                f"(members and ordering organisations: {', '.join(sorted(allowed))})"
            )
        overrides[mspid] = child
    return overrides


def _merge(defaults: PolicyMap, node: ConfigNode | None) -> PolicyMap:
    if node is None or node.is_null:
        return defaults
    merged = dict(defaults)
    for name, child in node.as_items():
        if not _POLICY_NAME.fullmatch(name):
            raise child.error(
                f"invalid policy name {name!r}: letters, digits, '_' and '-', "
                "starting with a letter"
            )
        text = child.as_str(
            expected='a policy rule such as "MAJORITY Admins" or "OR(\'X.admin\')"'
        )
        try:
            merged[name] = PolicyRule.parse(text)
        except PolicyError as error:
            raise child.error(f"not a valid policy: {error}") from None
    return MappingProxyType(merged)


def _check_sub_policies(
    policies: ChannelPolicies, fields: dict[str, ConfigNode]
) -> None:
    """Every overriding implicit meta rule names a policy that each child group defines.

    Otherwise that child could never satisfy the rule, which is almost always a misspelt
    name rather than an intent. (The defaults are consistent, and overrides can only
    add or replace policies, so only overridden rules need checking.)
    """
    levels = {
        "channel": (policies.channel, [policies.application, policies.orderer]),
        "application": (
            policies.application,
            list(policies.application_orgs.values()),
        ),
        "orderer": (policies.orderer, list(policies.orderer_orgs.values())),
    }
    for level, (own, children) in levels.items():
        level_node = fields.get(level)
        if level_node is None or level_node.is_null:
            continue
        for name, child in level_node.as_items():
            sub_policy = own[name].sub_policy
            if sub_policy is not None and not all(
                sub_policy in group for group in children
            ):
                raise child.error(
                    f"policy {name} asks for {sub_policy!r} of every child group of "
                    f"the {level} group, and not all of them define it"
                )


def _read_anchor_peers(
    node: ConfigNode | None, spec: ConsortiumSpec, members: tuple[str, ...]
) -> Mapping[str, tuple[NodeSpec, ...]]:
    anchors = {mspid: spec.organization(mspid).peers for mspid in members}
    if node is None or node.is_null:
        return MappingProxyType(anchors)
    for mspid, child in node.as_items():
        if mspid not in anchors:
            raise child.error(
                f"{mspid!r} is not a member of this channel "
                f"(members: {', '.join(members)})"
            )
        peers = {peer.name: peer for peer in spec.organization(mspid).peers}
        items = [] if child.is_null else child.as_list()
        chosen = []
        for item in items:
            name = item.as_str(expected="a peer name of the organisation, e.g. 'peer0'")
            if name not in peers:
                raise item.error(
                    f"organisation {mspid} has no peer {name!r} "
                    f"(peers: {', '.join(peers) or 'none'})"
                )
            chosen.append(peers[name])
        check_unique(
            zip(items, (p.name for p in chosen), strict=True), what="anchor peer"
        )
        anchors[mspid] = tuple(chosen)
    return MappingProxyType(anchors)


def _read_acls(node: ConfigNode | None, policies: ChannelPolicies) -> Mapping[str, str]:
    if node is None or node.is_null:
        return MappingProxyType({})
    known = _policy_paths(policies)
    acls = {}
    for resource, child in node.as_items():
        if not _ACL_RESOURCE.fullmatch(resource):
            raise child.error(f"invalid ACL resource name {resource!r}")
        reference = child.as_str(
            expected="a policy path such as '/Channel/Application/Writers'"
        )
        absolute = (
            reference
            if reference.startswith("/")
            else f"/{keys.CHANNEL}/{keys.APPLICATION}/{reference}"
        )
        if absolute not in known:
            raise child.error(
                f"no policy {absolute} on this channel; expected one of "
                f"{', '.join(sorted(known))}"
            )
        acls[resource] = reference
    return MappingProxyType(acls)


def _policy_paths(policies: ChannelPolicies) -> frozenset[str]:
    root = f"/{keys.CHANNEL}"
    application = f"{root}/{keys.APPLICATION}"
    orderer = f"{root}/{keys.ORDERER}"
    paths = {f"{root}/{name}" for name in policies.channel}
    paths |= {f"{application}/{name}" for name in policies.application}
    paths |= {f"{orderer}/{name}" for name in policies.orderer}
    for mspid, org_policies in policies.application_orgs.items():
        paths |= {f"{application}/{mspid}/{name}" for name in org_policies}
    for mspid, org_policies in policies.orderer_orgs.items():
        paths |= {f"{orderer}/{mspid}/{name}" for name in org_policies}
    return frozenset(paths)
