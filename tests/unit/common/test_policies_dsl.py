"""Unit tests for the policy language: parsing, formatting, envelopes, syntax errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import PolicyError, PolicySyntaxError
from common.policies import (
    Gate,
    Principal,
    Role,
    Rule,
    envelope_from_gate,
    format_rule,
    from_string,
    parse,
    principal_to_proto,
    role_mspids,
    to_string,
)
from common.policies.dsl import MAX_DEPTH
from protos.common import policies_pb2
from protos.msp import msp_principal_pb2


def role_principal(mspid: str, role: int) -> msp_principal_pb2.MSPPrincipal:
    encoded = msp_principal_pb2.MSPRole(msp_identifier=mspid, role=role)  # type: ignore[arg-type]
    return msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
        principal=encoded.SerializeToString(),
    )


def signed_by(index: int) -> policies_pb2.SignaturePolicy:
    return policies_pb2.SignaturePolicy(signed_by=index)


def n_out_of(
    n: int, *rules: policies_pb2.SignaturePolicy
) -> policies_pb2.SignaturePolicy:
    return policies_pb2.SignaturePolicy(
        n_out_of=policies_pb2.SignaturePolicy.NOutOf(n=n, rules=rules)
    )


A_MEMBER = Principal("A", Role.MEMBER)
B_MEMBER = Principal("B", Role.MEMBER)
C_MEMBER = Principal("C", Role.MEMBER)


# --- parsing and canonical form -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("AND('A.member', 'B.member')", "AND('A.member', 'B.member')"),
        ('and("A.member","B.member")', "AND('A.member', 'B.member')"),
        ("And('A.member' ,\n\t'B.member')", "AND('A.member', 'B.member')"),
        ("OR('Org1MSP.peer')", "OR('Org1MSP.peer')"),
        ("or('Org1MSP.peer', \"Org2MSP.peer\")", "OR('Org1MSP.peer', 'Org2MSP.peer')"),
        ("Or('A.admin','B.client')", "OR('A.admin', 'B.client')"),
        ("OutOf(1, 'A.orderer', 'B.peer')", "OR('A.orderer', 'B.peer')"),
        ("outof(2, 'A.member', 'B.member')", "AND('A.member', 'B.member')"),
        (
            "OUTOF(2, 'A.member', 'B.member', 'C.member')",
            "OutOf(2, 'A.member', 'B.member', 'C.member')",
        ),
        ("AND('A.member')", "OR('A.member')"),
        (
            "OutOf(2, 'A.member', AND('B.member','C.member'), 'D.peer')",
            "OutOf(2, 'A.member', AND('B.member', 'C.member'), 'D.peer')",
        ),
        (
            "OR(AND(OR('A.member'), OutOf(1, 'B.peer', 'C.peer')), 'D.admin')",
            "OR(AND(OR('A.member'), OR('B.peer', 'C.peer')), 'D.admin')",
        ),
        ("OR('org-1.example.com.peer')", "OR('org-1.example.com.peer')"),
        ("  OR('A.member')  ", "OR('A.member')"),
    ],
)
def test_policy_strings_render_canonically_and_round_trip(
    text: str, canonical: str
) -> None:
    """Any accepted spelling renders to one canonical string with the same envelope."""
    envelope = from_string(text)
    assert to_string(envelope) == canonical
    assert from_string(to_string(envelope)) == envelope


def test_keywords_are_case_insensitive_only_as_fabric_spells_them() -> None:
    """AND/And/and, OR/Or/or, OutOf/outof/OUTOF parse; other casings are errors."""
    for keyword in ("AND", "And", "and", "OR", "Or", "or"):
        assert parse(f"{keyword}('A.member')").rules == (A_MEMBER,)
    for keyword in ("OutOf", "outof", "OUTOF"):
        assert parse(f"{keyword}(1, 'A.member')") == Gate(1, (A_MEMBER,))
    for keyword in ("aNd", "Outof", "OUTof"):
        with pytest.raises(PolicySyntaxError, match="unknown gate"):
            parse(f"{keyword}('A.member')")


def test_and_is_all_of_and_or_is_one_of() -> None:
    """AND(a, b, c) is 3-of-3 and OR(a, b, c) is 1-of-3."""
    rules = (A_MEMBER, B_MEMBER, C_MEMBER)
    assert parse("AND('A.member', 'B.member', 'C.member')") == Gate(3, rules)
    assert parse("OR('A.member', 'B.member', 'C.member')") == Gate(1, rules)


def test_mspid_is_everything_before_the_last_dot() -> None:
    """MSP ids may contain dots and dashes; the role follows the last dot."""
    gate = parse("OR('peer.org-1.admin')")
    assert gate.rules == (Principal("peer.org-1", Role.ADMIN),)


def test_each_role_maps_to_its_msprole_value() -> None:
    """member/admin/client/peer/orderer are MSPRole 0/1/2/3/4."""
    envelope = from_string(
        "OR('A.member', 'A.admin', 'A.client', 'A.peer', 'A.orderer')"
    )
    assert list(envelope.identities) == [role_principal("A", role) for role in range(5)]


# --- envelope layout (Fabric's policydsl) -------------------------------------------


def test_envelope_of_a_flat_policy_matches_fabric() -> None:
    """A flat gate numbers its principals left to right, version 0."""
    expected = policies_pb2.SignaturePolicyEnvelope(
        version=0,
        rule=n_out_of(2, signed_by(0), signed_by(1)),
        identities=[
            role_principal("Org1MSP", msp_principal_pb2.MSPRole.PEER),
            role_principal("Org2MSP", msp_principal_pb2.MSPRole.MEMBER),
        ],
    )
    envelope = from_string("AND('Org1MSP.peer', 'Org2MSP.member')")
    assert envelope.SerializeToString() == expected.SerializeToString()


def test_nested_gates_number_their_principals_first_as_fabric_does() -> None:
    """Fabric numbers nested gates' principals before the enclosing gate's own."""
    envelope = from_string("OR('A.member', AND('B.member', 'C.member'), 'D.member')")
    member = msp_principal_pb2.MSPRole.MEMBER
    assert list(envelope.identities) == [
        role_principal(mspid, member) for mspid in ("B", "C", "A", "D")
    ]
    assert envelope.rule == n_out_of(
        1, signed_by(2), n_out_of(2, signed_by(0), signed_by(1)), signed_by(3)
    )


def test_repeated_principals_get_their_own_identity_entries() -> None:
    """Like Fabric, the identities list is not de-duplicated."""
    envelope = from_string("AND('A.member', 'A.member')")
    assert len(envelope.identities) == 2
    assert envelope.identities[0] == envelope.identities[1]
    assert envelope.rule == n_out_of(2, signed_by(0), signed_by(1))


def test_to_string_renders_envelopes_built_by_hand() -> None:
    """An envelope not made by the parser (shared principal index) still renders."""
    envelope = policies_pb2.SignaturePolicyEnvelope(
        rule=n_out_of(2, signed_by(0), signed_by(0)),
        identities=[role_principal("A", msp_principal_pb2.MSPRole.MEMBER)],
    )
    assert to_string(envelope) == "AND('A.member', 'A.member')"


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        (
            policies_pb2.SignaturePolicyEnvelope(
                rule=n_out_of(1, signed_by(1)),
                identities=[role_principal("A", msp_principal_pb2.MSPRole.MEMBER)],
            ),
            "out of range",
        ),
        (
            policies_pb2.SignaturePolicyEnvelope(
                rule=n_out_of(1, signed_by(0)),
                identities=[
                    msp_principal_pb2.MSPPrincipal(
                        principal_classification=msp_principal_pb2.MSPPrincipal.IDENTITY,
                        principal=b"cert",
                    )
                ],
            ),
            "only MSP role principals",
        ),
        (
            policies_pb2.SignaturePolicyEnvelope(version=1, rule=signed_by(0)),
            "version",
        ),
        (policies_pb2.SignaturePolicyEnvelope(), "empty"),
    ],
)
def test_to_string_rejects_envelopes_the_language_cannot_express(
    envelope: policies_pb2.SignaturePolicyEnvelope, message: str
) -> None:
    """Malformed or non-role envelopes raise PolicyError, not a crash."""
    with pytest.raises(PolicyError, match=message):
        to_string(envelope)


# --- syntax errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("", 0, "empty policy"),
        ("   ", 3, "empty policy"),
        ("AND('A.member'", 3, "unbalanced '\\('"),
        ("OR('A.member', AND('B.member')", 2, "unbalanced '\\('"),
        ("AND('A.member'))", 15, "unbalanced '\\)'"),
        ("AND('A.member') OR('B.member')", 16, "after the policy"),
        ("AND('A.member'),", 15, "after the policy"),
        ("AND('A.boss')", 7, "unknown role 'boss'"),
        ("AND('A.MEMBER')", 7, "unknown role 'MEMBER'"),
        ("AND('A.member', 'B.')", 19, "unknown role ''"),
        ("AND('Amember')", 5, "not of the form"),
        ("AND('.member')", 5, "missing MSP id"),
        ("AND('Org_1.member')", 8, "invalid character '_'"),
        ("AND(' A.member')", 5, "invalid character ' '"),
        ("AND('A.member)", 4, "missing closing quote"),
        ("OR(\"A.member')", 3, "missing closing quote"),
        ("OutOf(x, 'A.member')", 6, "must be an integer"),
        ("OutOf(1.5, 'A.member')", 6, "must be an integer"),
        ("OutOf('1', 'A.member')", 6, "must be an integer"),
        ("OutOf(3, 'A.member', 'B.member')", 6, "exceeds the number of rules \\(2\\)"),
        ("OutOf(0, 'A.member')", 6, "at least 1"),
        ("OutOf(-1, 'A.member')", 6, "at least 1"),
        ("OutOf(1)", 7, "at least one rule"),
        ("OutOf(1 'A.member')", 8, "expected ','"),
        ("AND()", 4, "empty argument list"),
        ("OR( )", 4, "empty argument list"),
        ("AND('A.member',)", 15, "expected a principal or a gate"),
        ("AND('A.member',", 15, "expected a principal or a gate"),
        ("AND(A.member)", 4, "must be a quoted string"),
        ("AND(1, 'A.member')", 4, "must be a quoted string"),
        ("AND('A.member' 'B.member')", 15, "expected ',' or '\\)'"),
        ("AND('A.member', XOR('B.member'))", 16, "unknown gate 'XOR'"),
        ("XOR('A.member')", 0, "unknown gate 'XOR'"),
        ("'A.member'", 0, "not a principal"),
        ("(OR('A.member'))", 0, "expected AND, OR or OutOf"),
        ("AND 'A.member'", 4, "expected '\\(' after AND"),
        ("AND('A.member' + 'B.member')", 15, "expected ',' or '\\)'"),
    ],
)
def test_malformed_policies_report_the_offending_position(
    text: str, position: int, message: str
) -> None:
    """Each malformed string raises PolicySyntaxError pointing at the problem."""
    with pytest.raises(PolicySyntaxError, match=message) as caught:
        from_string(text)
    assert caught.value.position == position
    assert caught.value.text == text


def test_nesting_is_bounded() -> None:
    """Gates nested deeper than MAX_DEPTH are rejected, not a RecursionError."""
    ok = "OR(" * MAX_DEPTH + "'A.member'" + ")" * MAX_DEPTH
    assert to_string(from_string(ok)) == ok
    deep = "OR(" * 1000 + "'A.member'" + ")" * 1000
    with pytest.raises(PolicySyntaxError, match="nested deeper") as caught:
        from_string(deep)
    assert caught.value.position == 3 * MAX_DEPTH


# --- properties ---------------------------------------------------------------------

MSPIDS = st.from_regex(r"[A-Za-z0-9.\-]{1,12}", fullmatch=True)
PRINCIPALS = st.builds(Principal, mspid=MSPIDS, role=st.sampled_from(Role))


def gates_of(rules: st.SearchStrategy[Rule]) -> st.SearchStrategy[Gate]:
    return st.lists(rules, min_size=1, max_size=4).flatmap(
        lambda items: st.integers(1, len(items)).map(lambda n: Gate(n, tuple(items)))
    )


RULES = st.recursive(PRINCIPALS, gates_of, max_leaves=12)
GATES = gates_of(RULES)

SPELLINGS = {
    "and": ("AND", "And", "and"),
    "or": ("OR", "Or", "or"),
    "outof": ("OutOf", "outof", "OUTOF"),
}
SPACE = st.sampled_from(["", " ", "  ", "\n", "\t "])


def render_freely(rule: Rule, data: st.DataObject) -> str:
    """Render a rule with any accepted spelling, quote style and whitespace."""
    if isinstance(rule, Principal):
        quote = data.draw(st.sampled_from(["'", '"']))
        return f"{quote}{rule.mspid}.{rule.role.value}{quote}"
    args = [render_freely(sub, data) for sub in rule.rules]
    if rule.n == len(rule.rules):
        keyword = data.draw(st.sampled_from(SPELLINGS["and"]))
    elif rule.n == 1:
        keyword = data.draw(st.sampled_from(SPELLINGS["or"]))
    else:
        keyword = data.draw(st.sampled_from(SPELLINGS["outof"]))
        args.insert(0, str(rule.n))
    joined = ",".join(data.draw(SPACE) + arg + data.draw(SPACE) for arg in args)
    return f"{keyword}{data.draw(SPACE)}({joined})"


@settings(max_examples=150, deadline=None)
@given(gate=GATES)
def test_random_policy_trees_render_and_parse_back(gate: Gate) -> None:
    """format -> parse is the identity on trees, and envelopes survive to_string."""
    text = format_rule(gate)
    assert parse(text) == gate
    envelope = envelope_from_gate(gate)
    assert from_string(text) == envelope
    assert from_string(to_string(envelope)) == envelope


@settings(max_examples=100, deadline=None)
@given(gate=GATES, data=st.data())
def test_any_accepted_spelling_parses_to_the_same_tree(
    gate: Gate, data: st.DataObject
) -> None:
    """Keyword casing, quote style and whitespace never change the parsed tree."""
    text = render_freely(gate, data)
    assert parse(text) == gate


TOKEN_SOUP = st.lists(
    st.sampled_from(
        [
            "AND",
            "or",
            "OutOf",
            "(",
            ")",
            ",",
            "'A.member'",
            '"B.peer"',
            "'",
            '"',
            "2",
            "-1",
            "1.5",
            " ",
            "x",
            "'C.boss'",
            "'.admin'",
            "\n",
        ]
    ),
    max_size=25,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=60), TOKEN_SOUP))
def test_random_text_only_ever_raises_policy_syntax_error(text: str) -> None:
    """Arbitrary input parses or raises PolicySyntaxError positioned inside the text."""
    try:
        envelope = from_string(text)
    except PolicySyntaxError as error:
        position = error.position
    else:
        assert from_string(to_string(envelope)) == envelope
        return
    assert 0 <= position <= len(text)


def test_principal_to_proto_is_a_serialized_msprole() -> None:
    """The principal bytes decode as MSPRole{msp_identifier, role}."""
    principal = principal_to_proto(Principal("Org1MSP", Role.ORDERER))
    role = msp_principal_pb2.MSPRole.FromString(principal.principal)
    assert role.msp_identifier == "Org1MSP"
    assert role.role == msp_principal_pb2.MSPRole.ORDERER


def test_role_mspids_names_the_organisations_of_role_principals_only() -> None:
    envelope = from_string(
        "OR('HospitalAMSP.member', AND('HospitalBMSP.peer', 'HospitalAMSP.admin'))"
    )
    envelope.identities.add(
        principal_classification=msp_principal_pb2.MSPPrincipal.IDENTITY,
        principal=b"not a role",
    )
    envelope.identities.add(
        principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
        principal=b"\xff\xff",  # undecodable: names no organisation
    )
    assert role_mspids(envelope) == {"HospitalAMSP", "HospitalBMSP"}
