"""Unit tests for policy evaluation: signature policies, implicit meta, policy paths.

The MSPs are a small fake implementing `common.policies.MspSource`: an identity is a
name with roles, serialises to `mspid:name`, and its "signature" over a message is
`sig:name:` + message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from common.errors import (
    InvalidSignature,
    MalformedIdentity,
    PolicyError,
    PolicyNotSatisfied,
    PolicySyntaxError,
    RevokedCertificate,
    UnknownPolicy,
)
from common.policies import (
    MetaRule,
    PolicyManager,
    SignedData,
    evaluate_signature_policy,
    from_string,
    implicit_meta_from_proto,
    implicit_meta_from_string,
    implicit_meta_threshold,
    implicit_meta_to_string,
    parse_implicit_meta,
    policy_from_application_policy,
    policy_from_proto,
    satisfied_by_orgs,
    valid_identities,
)
from protos.common import configtx_pb2, policies_pb2
from protos.msp import msp_principal_pb2
from protos.peer import policy_pb2

MESSAGE = b"proposal response payload"


@dataclass(frozen=True)
class FakeIdentity:
    mspid: str
    name: str
    roles: frozenset[str] = frozenset({"client"})

    @property
    def serialized(self) -> bytes:
        return f"{self.mspid}:{self.name}".encode()

    def verify(self, message: bytes, signature: bytes) -> None:
        if signature != f"sig:{self.name}:".encode() + message:
            raise InvalidSignature(f"bad signature by {self.name}")

    def sign(self, message: bytes = MESSAGE) -> SignedData:
        signature = f"sig:{self.name}:".encode() + message
        return SignedData(data=message, identity=self.serialized, signature=signature)

    def forge(self, message: bytes = MESSAGE) -> SignedData:
        return SignedData(data=message, identity=self.serialized, signature=b"forged")


@dataclass
class FakeMsps:
    """Knows a fixed set of identities; `revoked` ones fail validation."""

    known: dict[bytes, FakeIdentity] = field(default_factory=dict)
    revoked: set[bytes] = field(default_factory=set)
    principal_checks: int = 0

    def add(self, *identities: FakeIdentity) -> FakeMsps:
        for identity in identities:
            self.known[identity.serialized] = identity
        return self

    def deserialize_identity(self, serialized: bytes) -> FakeIdentity:
        if serialized not in self.known:
            raise MalformedIdentity(f"unknown identity {serialized!r}")
        return self.known[serialized]

    def validate(self, identity: FakeIdentity) -> None:
        if identity.serialized in self.revoked:
            raise RevokedCertificate(f"{identity.name} is revoked")

    def satisfies_principal(
        self, identity: FakeIdentity, principal: msp_principal_pb2.MSPPrincipal
    ) -> bool:
        self.principal_checks += 1
        role = msp_principal_pb2.MSPRole.FromString(principal.principal)
        if role.msp_identifier != identity.mspid:
            return False
        name = msp_principal_pb2.MSPRole.MSPRoleType.Name(role.role).lower()
        return name == "member" or name in identity.roles


def member(mspid: str, name: str) -> FakeIdentity:
    return FakeIdentity(mspid, name, frozenset({"client"}))


def peer(mspid: str, name: str) -> FakeIdentity:
    return FakeIdentity(mspid, name, frozenset({"peer"}))


def admin(mspid: str, name: str) -> FakeIdentity:
    return FakeIdentity(mspid, name, frozenset({"admin"}))


A1, A2, B1, C1, D1 = (member(name[0], name) for name in ["A1", "A2", "B1", "C1", "D1"])
A_PEER, B_PEER, C_PEER, D_PEER = (peer(m, f"{m}-peer") for m in "ABCD")
ALL_IDENTITIES = (A1, A2, B1, C1, D1, A_PEER, B_PEER, C_PEER, D_PEER)


def is_satisfied(policy: str, signers: Sequence[SignedData]) -> bool:
    """Evaluate a policy string; True when satisfied, False on PolicyNotSatisfied."""
    msps = FakeMsps().add(*ALL_IDENTITIES)
    try:
        evaluate_signature_policy(from_string(policy), signers, msps)
    except PolicyNotSatisfied:
        return False
    return True


def signed(*identities: FakeIdentity) -> list[SignedData]:
    return [identity.sign() for identity in identities]


# --- signature policies -------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "signers", "expected"),
    [
        ("AND('A.member', 'B.member')", (A1, B1), True),
        ("AND('A.member', 'B.member')", (B1, A1), True),
        ("AND('A.member', 'B.member')", (A1,), False),
        ("AND('A.member', 'B.member')", (A1, C1), False),
        ("OR('A.member', 'B.member')", (B1,), True),
        ("OR('A.member', 'B.member')", (), False),
        ("OR('A.peer')", (A1,), False),
        ("OR('A.peer')", (A_PEER,), True),
        ("OR('A.member')", (A_PEER,), True),
        ("OutOf(2, 'A.member', 'B.member', 'C.member')", (A1, C1), True),
        ("OutOf(2, 'A.member', 'B.member', 'C.member')", (C1,), False),
    ],
)
def test_signature_policies_follow_and_or_outof(
    policy: str, signers: tuple[FakeIdentity, ...], expected: bool
) -> None:
    """AND needs every principal, OR one, OutOf(n) n of them."""
    assert is_satisfied(policy, signed(*signers)) is expected


@pytest.mark.parametrize(
    ("signers", "expected"),
    [
        ((A1, D_PEER), True),
        ((B1, C1), False),
        ((A1, B1, C1), True),
        ((B1, C1, D_PEER), True),
        ((A1, D1), False),
        ((A1, B1), False),
        ((D_PEER,), False),
    ],
)
def test_nested_outof_counts_the_inner_and_as_one_rule(
    signers: tuple[FakeIdentity, ...], expected: bool
) -> None:
    """OutOf(2, A, AND(B, C), D.peer) needs two of: A, both B and C, a D peer."""
    policy = "OutOf(2, 'A.member', AND('B.member','C.member'), 'D.peer')"
    assert is_satisfied(policy, signed(*signers)) is expected


def test_a_repeated_signer_counts_once() -> None:
    """AND('A.member','A.member') needs two distinct A identities."""
    policy = "AND('A.member', 'A.member')"
    assert not is_satisfied(policy, signed(A1, A1))
    assert not is_satisfied(policy, signed(A1, A1, A1, B1))
    assert is_satisfied(policy, signed(A1, A2))


def test_one_identity_cannot_satisfy_two_principals_of_an_and() -> None:
    """A peer is both A.member and A.peer, but serves only one of them."""
    assert not is_satisfied("AND('A.member', 'A.peer')", signed(A_PEER))
    assert is_satisfied("AND('A.member', 'A.peer')", signed(A1, A_PEER))
    assert not is_satisfied("AND('A.peer', OR('A.member'))", signed(A_PEER))


def test_matching_is_greedy_in_signer_order_as_in_fabric() -> None:
    """Fabric takes the first unused match, so signer order can decide the outcome."""
    policy = "AND('A.member', 'A.peer')"
    assert is_satisfied(policy, signed(A1, A_PEER))
    # The peer is taken for 'A.member' first and no peer is left for 'A.peer'.
    assert not is_satisfied(policy, signed(A_PEER, A1))


def test_an_or_gate_keeps_every_signer_it_matched_as_in_fabric() -> None:
    """Fabric evaluates all sub-rules of a gate, so OR uses up every matching signer."""
    policy = "AND(OR('A.member', 'B.member'), 'A.member')"
    assert not is_satisfied(policy, signed(A1, B1))
    assert is_satisfied(policy, signed(A1, B1, A2))


def test_failed_branches_release_their_signers() -> None:
    """Signers tentatively taken by a failing sub-gate remain free for later rules."""
    assert is_satisfied("OR(AND('A.member', 'B.member'), 'A.member')", signed(A1))
    policy = "OutOf(2, AND('A.member', 'B.member'), 'A.member', 'C.member')"
    assert is_satisfied(policy, signed(A1, C1))


def test_invalid_signers_are_dropped() -> None:
    """Forged signatures, unknown and revoked identities do not count."""
    msps = FakeMsps().add(A1, B1)
    msps.revoked.add(B1.serialized)
    stranger = member("A", "stranger")
    envelope = from_string("OR('A.member', 'B.member')")
    for signers in ([A1.forge()], [B1.sign()], [stranger.sign()]):
        with pytest.raises(PolicyNotSatisfied):
            evaluate_signature_policy(envelope, signers, msps)
    evaluate_signature_policy(envelope, [A1.forge(), stranger.sign(), A1.sign()], msps)


def test_signature_must_cover_the_signed_data() -> None:
    """A genuine signature over other bytes is not a signature over this data."""
    other = A1.sign(b"other")
    msps = FakeMsps().add(A1)
    moved = SignedData(data=MESSAGE, identity=other.identity, signature=other.signature)
    with pytest.raises(PolicyNotSatisfied):
        evaluate_signature_policy(from_string("OR('A.member')"), [moved], msps)


def test_valid_identities_are_deduplicated_after_a_verified_signature() -> None:
    """A forged copy does not block a later genuine one; a genuine one blocks copies."""
    msps = FakeMsps().add(A1, B1)
    signers = [A1.forge(), A1.sign(), A1.sign(), B1.sign(), b_unknown()]
    assert valid_identities(signers, msps) == [A1, B1]


def b_unknown() -> SignedData:
    return SignedData(data=MESSAGE, identity=b"garbage", signature=b"x")


def test_failure_message_names_the_unmatched_principals() -> None:
    """The error says which principals found no signer."""
    msps = FakeMsps().add(A1)
    envelope = from_string("AND('A.member', 'Org2MSP.peer')")
    with pytest.raises(PolicyNotSatisfied, match=r"'Org2MSP\.peer'") as caught:
        evaluate_signature_policy(envelope, signed(A1), msps)
    assert "'A.member'" not in str(caught.value).split("unmatched:")[1]


def test_principal_checks_are_cached_per_identity_and_principal() -> None:
    """Leaves sharing a principal index check each identity against it only once."""
    msps = FakeMsps().add(*ALL_IDENTITIES)
    envelope = from_string("OR('A.member')")
    leaf = policies_pb2.SignaturePolicy(signed_by=0)
    envelope.rule.n_out_of.rules.extend([leaf, leaf])
    with pytest.raises(PolicyNotSatisfied):
        evaluate_signature_policy(envelope, signed(B1, C1, D1), msps)
    assert msps.principal_checks == 3


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        (policies_pb2.SignaturePolicyEnvelope(), "empty"),
        (
            policies_pb2.SignaturePolicyEnvelope(
                rule=policies_pb2.SignaturePolicy(signed_by=0)
            ),
            "out of range",
        ),
        (
            policies_pb2.SignaturePolicyEnvelope(
                version=2, rule=policies_pb2.SignaturePolicy(signed_by=0)
            ),
            "version",
        ),
    ],
)
def test_malformed_envelopes_raise_policy_error(
    envelope: policies_pb2.SignaturePolicyEnvelope, message: str
) -> None:
    """A malformed envelope is an error in its own right, not a failed check."""
    with pytest.raises(PolicyError, match=message) as caught:
        evaluate_signature_policy(envelope, signed(A1), FakeMsps().add(A1))
    assert not isinstance(caught.value, PolicyNotSatisfied)


def test_outof_zero_from_the_wire_is_always_satisfied() -> None:
    """An n=0 gate (not writable in the DSL, accepted by Fabric) needs no signature."""
    envelope = from_string("OR('A.member')")
    envelope.rule.n_out_of.n = 0
    evaluate_signature_policy(envelope, [], FakeMsps())


# --- endorsement planning -----------------------------------------------------------


@pytest.mark.parametrize(
    ("orgs", "expected"),
    [
        (["A", "D"], True),
        (["B", "C"], False),
        (["A", "B", "C"], True),
        (["D"], False),
        (["B", "C", "D"], True),
        ([], False),
    ],
)
def test_satisfied_by_orgs_plans_with_one_peer_per_org(
    orgs: list[str], expected: bool
) -> None:
    """Whether one peer of each listed org could satisfy the policy."""
    envelope = from_string("OutOf(2, 'A.member', AND('B.member','C.member'), 'D.peer')")
    assert satisfied_by_orgs(envelope, orgs) is expected


def test_satisfied_by_orgs_ignores_roles_peers_do_not_hold() -> None:
    """Peers never satisfy admin, client or orderer principals."""
    for role in ("admin", "client", "orderer"):
        assert not satisfied_by_orgs(from_string(f"OR('A.{role}')"), ["A"])


def test_satisfied_by_orgs_counts_peers_per_org() -> None:
    """Two principals of one org need two of its peers."""
    envelope = from_string("AND('A.peer', 'A.member')")
    assert not satisfied_by_orgs(envelope, ["A", "A"])
    assert satisfied_by_orgs(envelope, ["A"], peers_per_org=2)


# --- implicit meta strings ----------------------------------------------------------


@pytest.mark.parametrize("text", ["ANY Readers", "ALL Writers", "MAJORITY Admins"])
def test_implicit_meta_strings_round_trip(text: str) -> None:
    """`RULE SubPolicy` parses into the proto and renders back identically."""
    proto = implicit_meta_from_string(text)
    assert implicit_meta_to_string(proto) == text
    assert str(implicit_meta_from_proto(proto.SerializeToString())) == text


def test_implicit_meta_proto_uses_fabric_enum_values() -> None:
    """ANY=0, ALL=1, MAJORITY=2 in ImplicitMetaPolicy.rule."""
    proto = implicit_meta_from_string("MAJORITY Endorsement")
    assert (proto.rule, proto.sub_policy) == (2, "Endorsement")
    assert parse_implicit_meta("ALL Admins").rule is MetaRule.ALL


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("", 0),
        ("SOME Readers", 0),
        ("any Readers", 0),
        (" ANY Readers", 0),
        ("ANY", 3),
        ("ANY ", 4),
        ("ANY  Readers", 4),
        ("ANY Readers extra", 11),
        ("ANY Read/ers", 8),
    ],
)
def test_malformed_implicit_meta_strings_report_position(
    text: str, position: int
) -> None:
    """Malformed `RULE SubPolicy` strings raise PolicySyntaxError at the problem."""
    with pytest.raises(PolicySyntaxError) as caught:
        parse_implicit_meta(text)
    assert caught.value.position == position


@pytest.mark.parametrize(
    ("rule", "children", "threshold"),
    [
        (MetaRule.ANY, 1, 1),
        (MetaRule.ANY, 5, 1),
        (MetaRule.ALL, 3, 3),
        (MetaRule.MAJORITY, 1, 1),
        (MetaRule.MAJORITY, 2, 2),
        (MetaRule.MAJORITY, 3, 2),
        (MetaRule.MAJORITY, 4, 3),
        (MetaRule.MAJORITY, 5, 3),
        (MetaRule.ANY, 0, 0),
        (MetaRule.ALL, 0, 0),
        (MetaRule.MAJORITY, 0, 0),
    ],
)
def test_implicit_meta_thresholds(
    rule: MetaRule, children: int, threshold: int
) -> None:
    """MAJORITY is strictly more than half; no children means nothing is required."""
    assert implicit_meta_threshold(rule, children) == threshold


# --- channel config trees -----------------------------------------------------------


def signature_policy(text: str) -> configtx_pb2.ConfigPolicy:
    value = from_string(text).SerializeToString()
    policy = policies_pb2.Policy(type=policies_pb2.Policy.SIGNATURE, value=value)
    return configtx_pb2.ConfigPolicy(policy=policy, mod_policy="Admins")


def meta_policy(text: str) -> configtx_pb2.ConfigPolicy:
    value = implicit_meta_from_string(text).SerializeToString()
    policy = policies_pb2.Policy(type=policies_pb2.Policy.IMPLICIT_META, value=value)
    return configtx_pb2.ConfigPolicy(policy=policy, mod_policy="Admins")


def org_group(mspid: str, *, endorsement: bool = True) -> configtx_pb2.ConfigGroup:
    policies = {
        "Readers": signature_policy(f"OR('{mspid}.member')"),
        "Writers": signature_policy(f"OR('{mspid}.member')"),
        "Admins": signature_policy(f"OR('{mspid}.admin')"),
    }
    if endorsement:
        policies["Endorsement"] = signature_policy(f"OR('{mspid}.peer')")
    return configtx_pb2.ConfigGroup(policies=policies)


def channel_group(
    mspids: Iterable[str], *, extra: Mapping[str, configtx_pb2.ConfigGroup] = {}
) -> configtx_pb2.ConfigGroup:
    groups = {mspid: org_group(mspid) for mspid in mspids} | dict(extra)
    application = configtx_pb2.ConfigGroup(
        groups=groups,
        policies={
            "Readers": meta_policy("ANY Readers"),
            "Writers": meta_policy("ANY Writers"),
            "Admins": meta_policy("MAJORITY Admins"),
            "Endorsement": meta_policy("MAJORITY Endorsement"),
            "AllAdmins": meta_policy("ALL Admins"),
        },
    )
    orderer = configtx_pb2.ConfigGroup(
        groups={"O": org_group("O")},
        policies={
            "Writers": meta_policy("ANY Writers"),
            "BlockValidation": meta_policy("ANY Writers"),
        },
    )
    return configtx_pb2.ConfigGroup(
        groups={"Application": application, "Orderer": orderer},
        policies={
            "Readers": meta_policy("ANY Readers"),
            "Writers": meta_policy("ANY Writers"),
            "Admins": meta_policy("MAJORITY Admins"),
        },
    )


A_ADMIN, B_ADMIN, C_ADMIN = (admin(m, f"{m}-admin") for m in "ABC")
O_MEMBER = member("O", "orderer0")
CONFIG_MSPS = FakeMsps().add(*ALL_IDENTITIES, A_ADMIN, B_ADMIN, C_ADMIN, O_MEMBER)


def config_policy_of(policy_type: int, value: bytes) -> configtx_pb2.ConfigPolicy:
    return configtx_pb2.ConfigPolicy(
        policy=policies_pb2.Policy(type=policy_type, value=value)
    )


def passes(manager: PolicyManager, path: str, *signers: FakeIdentity) -> bool:
    try:
        manager.get(path).evaluate(signed(*signers), CONFIG_MSPS)
    except PolicyNotSatisfied:
        return False
    return True


def test_majority_of_two_orgs_needs_both() -> None:
    """MAJORITY Admins over two orgs is satisfied only by both admins."""
    manager = PolicyManager.from_config_group(channel_group(["A", "B"]))
    assert not passes(manager, "/Channel/Application/Admins", A_ADMIN)
    assert not passes(manager, "/Channel/Application/Admins", A_ADMIN, A1)
    assert passes(manager, "/Channel/Application/Admins", A_ADMIN, B_ADMIN)


def test_majority_of_three_orgs_needs_two() -> None:
    """MAJORITY Endorsement over three orgs is satisfied by any two orgs' peers."""
    manager = PolicyManager.from_config_group(channel_group(["A", "B", "C"]))
    path = "/Channel/Application/Endorsement"
    assert not passes(manager, path, A_PEER)
    assert passes(manager, path, A_PEER, C_PEER)
    assert passes(manager, path, B_PEER, C_PEER)
    assert not passes(manager, path, A_PEER, B1, C1)


def test_any_and_all() -> None:
    """ANY Writers needs one org's member; ALL Admins needs every org's admin."""
    manager = PolicyManager.from_config_group(channel_group(["A", "B", "C"]))
    assert passes(manager, "/Channel/Application/Writers", C1)
    assert not passes(manager, "/Channel/Application/Writers", D1)
    assert not passes(manager, "/Channel/Application/AllAdmins", A_ADMIN, B_ADMIN)
    assert passes(manager, "/Channel/Application/AllAdmins", A_ADMIN, C_ADMIN, B_ADMIN)


def test_nested_implicit_meta_reaches_the_orgs() -> None:
    """/Channel/Writers is ANY of Application/Writers and Orderer/Writers."""
    manager = PolicyManager.from_config_group(channel_group(["A", "B"]))
    assert passes(manager, "/Channel/Writers", O_MEMBER)
    assert passes(manager, "/Channel/Writers", B1)
    assert not passes(manager, "/Channel/Writers", D1)
    assert passes(manager, "/Channel/Orderer/BlockValidation", O_MEMBER)
    assert not passes(manager, "/Channel/Orderer/BlockValidation", A1)


def test_child_without_the_sub_policy_counts_as_unsatisfied() -> None:
    """An org lacking Endorsement still counts towards the MAJORITY denominator."""
    manager = PolicyManager.from_config_group(
        channel_group(["A", "B"], extra={"C": org_group("C", endorsement=False)})
    )
    path = "/Channel/Application/Endorsement"
    assert not passes(manager, path, A_PEER, C_PEER)
    assert passes(manager, path, A_PEER, B_PEER)


def test_implicit_meta_without_children_is_satisfied() -> None:
    """As in Fabric, an implicit meta policy over no groups requires nothing."""
    group = configtx_pb2.ConfigGroup(policies={"Readers": meta_policy("ANY Readers")})
    manager = PolicyManager.from_config_group(group)
    manager.get("Readers").evaluate([], CONFIG_MSPS)


def test_implicit_meta_failure_message_counts_sub_policies() -> None:
    """The error names the policy and how many sub-policies were satisfied."""
    manager = PolicyManager.from_config_group(channel_group(["A", "B", "C"]))
    with pytest.raises(PolicyNotSatisfied) as caught:
        manager.get("/Channel/Application/Admins").evaluate(
            signed(A_ADMIN), CONFIG_MSPS
        )
    message = str(caught.value)
    assert "/Channel/Application/Admins" in message
    assert "1 of 3" in message
    assert "2 required" in message


def test_policies_resolve_by_absolute_and_relative_path() -> None:
    """Absolute paths from the root, relative names from any group, same objects."""
    manager = PolicyManager.from_config_group(channel_group(["A", "B"]))
    application = manager.manager(["Application"])
    writers = manager.get("/Channel/Application/Writers")
    assert manager.get("Application/Writers") is writers
    assert application.get("Writers") is writers
    assert application.get("/Channel/Application/Writers") is writers
    assert writers.name == "/Channel/Application/Writers"
    org = manager.get("/Channel/Application/A/Admins")
    assert manager.manager(["Application", "A"]).get("Admins") is org
    assert application.path == "Channel/Application"
    assert "Application/A/Endorsement" in manager.policy_names


@pytest.mark.parametrize(
    "path",
    [
        "",
        "Nope",
        "/Channel/Nope/Writers",
        "/Channel/Application/Z/Admins",
        "/Other/Application/Writers",
        "/ChannelX/Writers",
        "Channel/Writers",
        "/Channel/Application/Writers/",
    ],
)
def test_unknown_policy_paths_raise_with_the_path(path: str) -> None:
    """Missing policies raise UnknownPolicy naming the requested path."""
    manager = PolicyManager.from_config_group(channel_group(["A"]))
    with pytest.raises(UnknownPolicy) as caught:
        manager.get(path)
    assert path in str(caught.value)


def test_a_group_manager_cannot_reach_outside_its_group() -> None:
    """From /Channel/Application, an absolute path under /Channel/Orderer is unknown."""
    application = PolicyManager.from_config_group(channel_group(["A"])).manager(
        ["Application"]
    )
    with pytest.raises(UnknownPolicy, match="/Channel/Orderer/BlockValidation"):
        application.get("/Channel/Orderer/BlockValidation")
    with pytest.raises(UnknownPolicy, match="Z"):
        application.manager(["Z"])


@pytest.mark.parametrize(
    ("config_policy", "message"),
    [
        (configtx_pb2.ConfigPolicy(), "empty"),
        (config_policy_of(2, b""), "type 2"),
        (config_policy_of(1, b"\xff"), "malformed"),
        (config_policy_of(3, b"\x10\x07"), "rule value 7"),
        (config_policy_of(1, b""), "empty"),
    ],
)
def test_bad_config_policies_fail_the_build(
    config_policy: configtx_pb2.ConfigPolicy, message: str
) -> None:
    """Empty, unsupported or malformed policies raise PolicyError naming the path."""
    group = configtx_pb2.ConfigGroup(
        groups={
            "Application": configtx_pb2.ConfigGroup(policies={"Bad": config_policy})
        }
    )
    with pytest.raises(PolicyError, match=message) as caught:
        PolicyManager.from_config_group(group)
    assert "/Channel/Application/Bad" in str(caught.value)


# --- policies from protos -----------------------------------------------------------


def test_application_policy_with_a_signature_policy() -> None:
    """A chaincode's explicit signature policy is compiled and evaluated."""
    manager = PolicyManager.from_config_group(channel_group(["A", "B"]))
    application_policy = policy_pb2.ApplicationPolicy(
        signature_policy=from_string("AND('A.peer', 'B.peer')")
    )
    for form in (application_policy, application_policy.SerializeToString()):
        policy = policy_from_application_policy(form, channel=manager)
        policy.evaluate(signed(A_PEER, B_PEER), CONFIG_MSPS)
        with pytest.raises(PolicyNotSatisfied, match="endorsement policy"):
            policy.evaluate(signed(A_PEER), CONFIG_MSPS)


def test_application_policy_with_a_channel_reference() -> None:
    """A reference resolves to the channel's policy object at that path."""
    manager = PolicyManager.from_config_group(channel_group(["A", "B", "C"]))
    reference = policy_pb2.ApplicationPolicy(
        channel_config_policy_reference="/Channel/Application/Endorsement"
    )
    policy = policy_from_application_policy(reference, channel=manager)
    assert policy is manager.get("/Channel/Application/Endorsement")
    missing = policy_pb2.ApplicationPolicy(
        channel_config_policy_reference="/Channel/Application/LifecycleEndorsement"
    )
    with pytest.raises(UnknownPolicy, match="LifecycleEndorsement"):
        policy_from_application_policy(missing, channel=manager)


@pytest.mark.parametrize("value", [policy_pb2.ApplicationPolicy(), b"\x0a\x05\xff\xff"])
def test_malformed_application_policies_raise_policy_error(
    value: policy_pb2.ApplicationPolicy | bytes,
) -> None:
    """Neither field set, or undecodable bytes, is a PolicyError."""
    manager = PolicyManager.from_config_group(channel_group(["A"]))
    with pytest.raises(PolicyError):
        policy_from_application_policy(value, channel=manager)


def test_policy_from_proto_builds_signature_policies_only() -> None:
    """A standalone SIGNATURE policy compiles; IMPLICIT_META needs a config tree."""
    value = from_string("OR('A.member')").SerializeToString()
    policy = policy_from_proto(
        policies_pb2.Policy(type=policies_pb2.Policy.SIGNATURE, value=value),
        name="collection policy",
    )
    policy.evaluate(signed(A1), CONFIG_MSPS)
    assert policy.name == "collection policy"
    meta = policies_pb2.Policy(
        type=policies_pb2.Policy.IMPLICIT_META,
        value=implicit_meta_from_string("ANY Readers").SerializeToString(),
    )
    with pytest.raises(PolicyError, match="outside a config tree"):
        policy_from_proto(meta, name="x")
