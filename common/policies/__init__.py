"""Fabric's policy language: the DSL, signature and implicit meta policies, paths.

The kernel both peer and orderer use to decide whether a set of signatures is enough:
`from_string`/`to_string` for policy strings, `evaluate_signature_policy` for a
`SignaturePolicyEnvelope`, `PolicyManager` for the policies of a channel config tree and
`policy_from_application_policy` for chaincode and collection endorsement policies.
"""

from common.policies.dsl import Gate, Principal, Role, Rule, format_rule, parse
from common.policies.envelope import (
    envelope_from_gate,
    from_string,
    gate_from_envelope,
    principal_from_proto,
    principal_to_proto,
    role_mspids,
    to_string,
)
from common.policies.implicit_meta import (
    ImplicitMetaRule,
    MetaRule,
    implicit_meta_from_proto,
    implicit_meta_from_string,
    implicit_meta_threshold,
    implicit_meta_to_proto,
    implicit_meta_to_string,
    parse_implicit_meta,
)
from common.policies.manager import (
    ImplicitMetaPolicy,
    Policy,
    PolicyManager,
    SignatureEnvelopePolicy,
    policy_from_application_policy,
    policy_from_proto,
)
from common.policies.signature import (
    CompiledEnvelope,
    Identity,
    MspSource,
    SignedData,
    compile_envelope,
    evaluate_identities,
    evaluate_signature_policy,
    is_satisfied,
    satisfied_by_orgs,
    valid_identities,
)

__all__ = [
    "CompiledEnvelope",
    "Gate",
    "Identity",
    "ImplicitMetaPolicy",
    "ImplicitMetaRule",
    "MetaRule",
    "MspSource",
    "Policy",
    "PolicyManager",
    "Principal",
    "Role",
    "Rule",
    "SignatureEnvelopePolicy",
    "SignedData",
    "compile_envelope",
    "envelope_from_gate",
    "evaluate_identities",
    "evaluate_signature_policy",
    "format_rule",
    "from_string",
    "gate_from_envelope",
    "implicit_meta_from_proto",
    "implicit_meta_from_string",
    "implicit_meta_threshold",
    "implicit_meta_to_proto",
    "implicit_meta_to_string",
    "is_satisfied",
    "parse",
    "parse_implicit_meta",
    "policy_from_application_policy",
    "policy_from_proto",
    "principal_from_proto",
    "principal_to_proto",
    "role_mspids",
    "satisfied_by_orgs",
    "to_string",
    "valid_identities",
]
