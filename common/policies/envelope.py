"""Policy strings to and from `common.SignaturePolicyEnvelope`, byte for byte as Fabric.

`from_string` is what the lifecycle commands, collection configs and the consortium YAML
use to turn `OR('Org1MSP.peer', ...)` into the envelope stored on chain. The identities
list follows Fabric's `policydsl` exactly, so that an approval made with Fabric's `peer`
CLI and one made with ours carry identical bytes: every principal leaf gets its own
entry (no de-duplication), and a gate numbers the principals of its nested gates (left
to right) before its own direct principals.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from common.errors import PolicyError
from common.policies.dsl import Gate, Principal, Role, Rule, format_rule, parse
from protos.common import policies_pb2
from protos.msp import msp_principal_pb2

__all__ = [
    "envelope_from_gate",
    "from_string",
    "gate_from_envelope",
    "principal_from_proto",
    "principal_to_proto",
    "role_mspids",
    "to_string",
]

_ROLE_TO_PROTO = {
    Role.MEMBER: msp_principal_pb2.MSPRole.MEMBER,
    Role.ADMIN: msp_principal_pb2.MSPRole.ADMIN,
    Role.CLIENT: msp_principal_pb2.MSPRole.CLIENT,
    Role.PEER: msp_principal_pb2.MSPRole.PEER,
    Role.ORDERER: msp_principal_pb2.MSPRole.ORDERER,
}
_ROLE_FROM_PROTO = {value: role for role, value in _ROLE_TO_PROTO.items()}


def from_string(text: str) -> policies_pb2.SignaturePolicyEnvelope:
    """Parse a policy string into the envelope Fabric's `policydsl.FromString` builds.

    Raises:
        PolicySyntaxError: the text is not a policy (with the 0-based `position`).
    """
    return envelope_from_gate(parse(text))


def to_string(envelope: policies_pb2.SignaturePolicyEnvelope) -> str:
    """Render an envelope as a canonical policy string.

    Raises:
        PolicyError: the envelope is malformed or uses principals other than MSP roles,
            which the language cannot express.
    """
    return format_rule(gate_from_envelope(envelope))


def role_mspids(envelope: policies_pb2.SignaturePolicyEnvelope) -> frozenset[str]:
    """The MSP ids of the envelope's MSP role principals; other principals are skipped.

    This is how a collection's member organisations are read from its member policy
    (Fabric's `MemberOrgs`); an undecodable principal names no organisation.
    """
    found: set[str] = set()
    for principal in envelope.identities:
        if principal.principal_classification != msp_principal_pb2.MSPPrincipal.ROLE:
            continue
        role = msp_principal_pb2.MSPRole()
        try:
            role.ParseFromString(principal.principal)
        except DecodeError:
            continue
        found.add(role.msp_identifier)
    return frozenset(found)


def envelope_from_gate(gate: Gate) -> policies_pb2.SignaturePolicyEnvelope:
    """Encode a gate tree, numbering principals in Fabric's order."""
    identities: list[msp_principal_pb2.MSPPrincipal] = []
    rule = _encode_gate(gate, identities)
    return policies_pb2.SignaturePolicyEnvelope(
        version=0, rule=rule, identities=identities
    )


def gate_from_envelope(envelope: policies_pb2.SignaturePolicyEnvelope) -> Gate:
    """Decode an envelope whose rule is a gate and whose principals are all MSP roles.

    Raises:
        PolicyError: the envelope is malformed or not expressible as a policy string.
    """
    if envelope.version != 0:
        raise PolicyError(f"unsupported signature policy version {envelope.version}")
    principals = [principal_from_proto(item) for item in envelope.identities]
    rule = _decode_rule(envelope.rule, principals, depth=0)
    if not isinstance(rule, Gate):
        return Gate(n=1, rules=(rule,))
    return rule


def principal_to_proto(principal: Principal) -> msp_principal_pb2.MSPPrincipal:
    """The ROLE-classified `MSPPrincipal` for `'mspid.role'`."""
    role = msp_principal_pb2.MSPRole(
        msp_identifier=principal.mspid, role=_ROLE_TO_PROTO[principal.role]
    )
    return msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
        principal=role.SerializeToString(),
    )


def principal_from_proto(principal: msp_principal_pb2.MSPPrincipal) -> Principal:
    """Decode a ROLE principal.

    Raises:
        PolicyError: the principal is of another classification or does not parse.
    """
    if principal.principal_classification != msp_principal_pb2.MSPPrincipal.ROLE:
        raise PolicyError(
            "only MSP role principals can be written as a policy string, got "
            f"classification {principal.principal_classification}"
        )
    role = msp_principal_pb2.MSPRole()
    try:
        role.ParseFromString(principal.principal)
    except DecodeError as error:
        raise PolicyError(f"malformed MSPRole principal: {error}") from error
    if role.role not in _ROLE_FROM_PROTO:
        raise PolicyError(f"unknown MSP role value {role.role}")
    return Principal(mspid=role.msp_identifier, role=_ROLE_FROM_PROTO[role.role])


def _encode_gate(
    gate: Gate, identities: list[msp_principal_pb2.MSPPrincipal]
) -> policies_pb2.SignaturePolicy:
    # Fabric's parser evaluates nested gates as arguments before the enclosing gate
    # numbers its own principals, so nested principals get the lower indices.
    nested = {
        position: _encode_gate(rule, identities)
        for position, rule in enumerate(gate.rules)
        if isinstance(rule, Gate)
    }
    encoded: list[policies_pb2.SignaturePolicy] = []
    for position, rule in enumerate(gate.rules):
        if isinstance(rule, Gate):
            encoded.append(nested[position])
            continue
        identities.append(principal_to_proto(rule))
        encoded.append(policies_pb2.SignaturePolicy(signed_by=len(identities) - 1))
    return policies_pb2.SignaturePolicy(
        n_out_of=policies_pb2.SignaturePolicy.NOutOf(n=gate.n, rules=encoded)
    )


def _decode_rule(
    rule: policies_pb2.SignaturePolicy, principals: list[Principal], *, depth: int
) -> Rule:
    if depth > 100:
        raise PolicyError("signature policy nested too deeply")
    kind = rule.WhichOneof("Type")
    if kind == "signed_by":
        if not 0 <= rule.signed_by < len(principals):
            raise PolicyError(
                f"signed_by index {rule.signed_by} out of range for "
                f"{len(principals)} identities"
            )
        return principals[rule.signed_by]
    if kind == "n_out_of":
        rules = tuple(
            _decode_rule(sub, principals, depth=depth + 1)
            for sub in rule.n_out_of.rules
        )
        return Gate(n=rule.n_out_of.n, rules=rules)
    raise PolicyError("empty signature policy rule")
