"""Implicit meta policies: ANY, ALL or MAJORITY of a named policy of the child groups.

Channel configs use them for their group-level policies
(`/Channel/Application/Writers` is `ANY Writers` over the org groups, `Endorsement` is
`MAJORITY Endorsement`). This module holds the pure parts: the `"MAJORITY Admins"`
string form that configtx-style YAML uses, its proto encoding, and how many children
must be satisfied. `common.policies.manager` evaluates them inside a config tree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from common.errors import PolicyError, PolicySyntaxError
from protos.common import policies_pb2

__all__ = [
    "ImplicitMetaRule",
    "MetaRule",
    "implicit_meta_from_proto",
    "implicit_meta_from_string",
    "implicit_meta_threshold",
    "implicit_meta_to_proto",
    "implicit_meta_to_string",
    "parse_implicit_meta",
]


class MetaRule(enum.IntEnum):
    """How many children must be satisfied (values of `ImplicitMetaPolicy.Rule`)."""

    ANY = 0
    ALL = 1
    MAJORITY = 2


@dataclass(frozen=True, slots=True)
class ImplicitMetaRule:
    """`rule` applied to the policy named `sub_policy` of every child group."""

    rule: MetaRule
    sub_policy: str

    def __str__(self) -> str:
        return f"{self.rule.name} {self.sub_policy}"


def parse_implicit_meta(text: str) -> ImplicitMetaRule:
    """Parse `"<ANY|ALL|MAJORITY> <SubPolicy>"` (one space, as configtxgen requires).

    Raises:
        PolicySyntaxError: the text is not of that form (with the 0-based `position`).
    """
    parts = text.split(" ")
    rule_name = parts[0]
    if rule_name not in MetaRule.__members__:
        raise PolicySyntaxError(
            f"unknown implicit meta rule {rule_name!r}; expected ANY, ALL or MAJORITY",
            text=text,
            position=0,
        )
    if len(parts) == 1:
        raise PolicySyntaxError(
            "expected a sub-policy name after the rule", text=text, position=len(text)
        )
    sub_start = len(rule_name) + 1
    if not parts[1]:
        raise PolicySyntaxError(
            "missing sub-policy name", text=text, position=sub_start
        )
    if len(parts) > 2:
        raise PolicySyntaxError(
            "unexpected text after the sub-policy name",
            text=text,
            position=sub_start + len(parts[1]),
        )
    _check_sub_policy(parts[1], text=text, start=sub_start)
    return ImplicitMetaRule(rule=MetaRule[rule_name], sub_policy=parts[1])


def implicit_meta_from_string(text: str) -> policies_pb2.ImplicitMetaPolicy:
    """Parse the string form straight into the proto stored in channel configs.

    Raises:
        PolicySyntaxError: the text is not `"<ANY|ALL|MAJORITY> <SubPolicy>"`.
    """
    return implicit_meta_to_proto(parse_implicit_meta(text))


def implicit_meta_to_string(policy: policies_pb2.ImplicitMetaPolicy) -> str:
    """Render the proto as `"MAJORITY Admins"`.

    Raises:
        PolicyError: the rule value is unknown.
    """
    return str(implicit_meta_from_proto(policy))


def implicit_meta_to_proto(rule: ImplicitMetaRule) -> policies_pb2.ImplicitMetaPolicy:
    """The `common.ImplicitMetaPolicy` message for a rule."""
    return policies_pb2.ImplicitMetaPolicy(
        sub_policy=rule.sub_policy, rule=rule.rule.name
    )


def implicit_meta_from_proto(
    policy: policies_pb2.ImplicitMetaPolicy | bytes,
) -> ImplicitMetaRule:
    """Decode an `ImplicitMetaPolicy` message (or its bytes, as in `Policy.value`).

    Raises:
        PolicyError: the bytes do not parse or the rule value is unknown.
    """
    if isinstance(policy, bytes):
        message = policies_pb2.ImplicitMetaPolicy()
        try:
            message.ParseFromString(policy)
        except DecodeError as error:
            raise PolicyError(f"malformed ImplicitMetaPolicy: {error}") from error
        policy = message
    try:
        rule = MetaRule(policy.rule)
    except ValueError as error:
        raise PolicyError(f"unknown implicit meta rule value {policy.rule}") from error
    return ImplicitMetaRule(rule=rule, sub_policy=policy.sub_policy)


def implicit_meta_threshold(rule: MetaRule, child_count: int) -> int:
    """How many of `child_count` child policies must be satisfied.

    MAJORITY is strictly more than half (2 of 2, 2 of 3, 3 of 4). With no children at
    all the threshold is 0, so the policy is satisfied, as in Fabric.
    """
    if child_count == 0:
        return 0
    if rule is MetaRule.ANY:
        return 1
    if rule is MetaRule.ALL:
        return child_count
    return child_count // 2 + 1


def _check_sub_policy(name: str, *, text: str, start: int) -> None:
    for offset, char in enumerate(name):
        if char.isspace() or char == "/":
            raise PolicySyntaxError(
                f"invalid character {char!r} in sub-policy name",
                text=text,
                position=start + offset,
            )
