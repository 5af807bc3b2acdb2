"""Endorsement plans: the minimal organisation layouts that satisfy policies."""

from __future__ import annotations

import pytest

from common.channelconfig import ChannelConfig
from common.policies import SignatureEnvelopePolicy, from_string
from gateway.planner import Layout, Requirements, plan_layouts, satisfies

A, B, C = "HospitalAMSP", "HospitalBMSP", "HospitalCMSP"
ONE_EACH = {A: 1, B: 1, C: 1}


def policy(text: str) -> SignatureEnvelopePolicy:
    return SignatureEnvelopePolicy(from_string(text), name=text)


def layouts(text: str, available: dict[str, int], **options: object) -> list[str]:
    planned = plan_layouts(Requirements((policy(text),)), available, **options)  # type: ignore[arg-type]
    return [str(layout) for layout in planned]


def test_and_of_two_orgs_needs_both() -> None:
    assert layouts(f"AND('{A}.member', '{B}.member')", ONE_EACH) == [f"1×{A} + 1×{B}"]


def test_and_of_two_orgs_cannot_be_planned_when_one_has_no_peer() -> None:
    assert layouts(f"AND('{A}.member', '{B}.member')", {A: 2, C: 1}) == []


def test_or_gives_one_layout_per_org_the_preferred_first() -> None:
    text = f"OR('{A}.member', '{B}.member')"
    assert layouts(text, ONE_EACH) == [f"1×{A}", f"1×{B}"]
    assert layouts(text, ONE_EACH, preferred=B) == [f"1×{B}", f"1×{A}"]


def test_out_of_two_of_three_gives_every_pair() -> None:
    text = f"OutOf(2, '{A}.member', '{B}.member', '{C}.member')"
    assert layouts(text, ONE_EACH, preferred=C) == [
        f"1×{A} + 1×{C}",
        f"1×{B} + 1×{C}",
        f"1×{A} + 1×{B}",
    ]


def test_peer_role_counts_but_admin_and_client_roles_never_do() -> None:
    assert layouts(f"OR('{A}.peer', '{B}.admin')", ONE_EACH) == [f"1×{A}"]
    assert layouts(f"AND('{A}.client')", ONE_EACH) == []


def test_two_endorsements_of_one_org_need_two_of_its_peers() -> None:
    text = f"OutOf(2, '{A}.member', '{A}.peer')"
    assert layouts(text, {A: 1}) == []
    assert layouts(text, {A: 2, B: 1}) == [f"2×{A}"]


def test_layouts_are_minimal() -> None:
    text = f"OR(AND('{A}.member', '{B}.member'), '{C}.member')"
    assert layouts(text, ONE_EACH) == [f"1×{C}", f"1×{A} + 1×{B}"]


def test_allowed_orgs_restrict_the_endorsers() -> None:
    requirements = Requirements(
        (policy(f"OutOf(2, '{A}.member', '{B}.member', '{C}.member')"),),
        allowed_orgs=frozenset({A, C}),
    )
    assert [str(x) for x in plan_layouts(requirements, ONE_EACH)] == [f"1×{A} + 1×{C}"]


def test_every_policy_of_the_requirements_must_hold_at_once() -> None:
    requirements = Requirements(
        (
            policy(f"OR('{A}.member', '{B}.member')"),
            policy(f"AND('{C}.member')"),
        )
    )
    assert [str(x) for x in plan_layouts(requirements, ONE_EACH, preferred=A)] == [
        f"1×{A} + 1×{C}",
        f"1×{B} + 1×{C}",
    ]


def test_majority_through_the_channel_endorsement_reference(
    channel_config: ChannelConfig,
) -> None:
    majority = channel_config.policy_manager.get("/Channel/Application/Endorsement")
    requirements = Requirements((majority,))
    planned = plan_layouts(requirements, ONE_EACH, preferred=A)
    assert [str(x) for x in planned] == [
        f"1×{A} + 1×{B}",
        f"1×{A} + 1×{C}",
        f"1×{B} + 1×{C}",
    ]
    assert not satisfies((majority,), Layout.of({A: 1}))
    assert satisfies((majority,), Layout.of({B: 1, C: 1}))


@pytest.mark.parametrize("count", [0, 1])
def test_orgs_without_peers_are_left_out(count: int) -> None:
    assert layouts(f"OR('{A}.member', '{B}.member')", {A: count, B: 1}) == (
        [f"1×{A}", f"1×{B}"] if count else [f"1×{B}"]
    )
