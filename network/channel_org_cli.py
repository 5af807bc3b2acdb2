"""`medledger channel org-group` and `channel add-org`: a new hospital joins a channel.

Fabric's operator story for adding an organisation to a running channel is
``configtxgen -printOrg`` (the organisation's group as JSON), an edit of the channel
config that puts it under ``channel_group.groups.Application.groups``, a computed
update signed by enough admins of the current members, and ``peer channel update``.
Here:

    org-group  prints the group of an organisation from its MSP folder (CA and TLS CA
               certificates, admin certificates, NodeOU config.yaml), with the default
               application-organisation policies (Readers, Writers, Admins,
               Endorsement by role, as the consortium spec's defaults give them; any
               of them replaced with ``--policy NAME=RULE``) and optional anchor
               peers, in the JSON shape `channel config` writes, so it can be pasted
               under ``Application.groups.<MSPID>`` by hand. Role policies of peers
               and clients need the MSP's NodeOUs: without a config.yaml enabling
               them, the command refuses them rather than write a group no identity
               of the organisation could satisfy;
    add-org    does the rest in one go: fetches the channel's config from the orderer,
               adds the group under Application (refusing an organisation that is
               already a member), writes the edited config (``-o``, to keep a record)
               and hands it to `channel_update_cli.update_channel`, which computes
               the update, collects the ``--sign`` admins' signatures and submits it;
               with ``--update-output FILE`` it writes the update file instead,
               signed by the ``--sign`` admins if any (unsigned with none: the config
               is then read as ``--identity``/``--mspid``), for the admins to sign
               with `channel signconfigtx` and someone to submit with `channel
               update -f`.

The group is built by `network.genesis.organization_group`, the code that builds the
groups of a genesis block, so a hospital added later has the same group it would
have had from the start. After the config block, the new organisation's peer joins
with the channel's genesis block (`channel fetch oldest`, then `channel join
--mspid`) and catches up through the config blocks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from google.protobuf.message import DecodeError

from common.channelconfig import keys
from common.errors import ConfigError, PolicyError
from common.msp import SigningIdentity
from network.channel_common import (
    add_channel_orderer_arguments,
    add_identity_arguments,
    add_sign_argument,
    add_update_output_argument,
    config_reader,
    optional_identity,
    orderer_target,
    parse_signer,
    read_text,
    write_file,
)
from network.channel_update_cli import read_for_update
from network.config_json import (
    config_group_from_json,
    config_group_to_json,
    config_to_json,
    json_text,
)
from network.genesis import organization_group
from network.spec_channels import PolicyRule, default_application_org_policies
from protos.common import configtx_pb2, policies_pb2
from protos.msp import msp_config_pb2, msp_principal_pb2
from protos.peer import configuration_pb2 as peer_pb2

__all__ = [
    "add_channel_org_commands",
    "add_organization",
    "group_from_json",
    "group_mspid",
    "group_to_json",
    "new_organization_group",
    "parse_anchor_peer",
    "parse_policy_option",
]

EXIT_OK = 0
_MAX_PORT = 65535


def new_organization_group(
    mspid: str,
    msp_dir: Path,
    anchor_peers: tuple[tuple[str, int], ...] = (),
    *,
    policies: Mapping[str, str] | None = None,
) -> configtx_pb2.ConfigGroup:
    """The application group of organisation `mspid`, from its MSP folder.

    `policies` replace or add to the default policies by name (rules such as
    ``OR('HospitalDMSP.member')``).

    Raises:
        ConfigError: the MSP folder is missing or unreadable, a rule is not valid, or
            a policy names a peer, client or orderer role of an MSP without NodeOUs
            (no identity could ever satisfy it).
    """
    rules = dict(default_application_org_policies(mspid))
    for name, text in (policies or {}).items():
        try:
            rules[name] = PolicyRule.parse(text)
        except PolicyError as error:
            raise ConfigError(f"policy {name!r}: {error}") from None
    group = organization_group(rules, msp_dir=msp_dir, mspid=mspid)
    _check_roles(group, msp_dir)
    if anchor_peers:
        anchors = peer_pb2.AnchorPeers(
            anchor_peers=[
                peer_pb2.AnchorPeer(host=host, port=port) for host, port in anchor_peers
            ]
        )
        group.values[keys.ANCHOR_PEERS].CopyFrom(
            configtx_pb2.ConfigValue(
                value=anchors.SerializeToString(deterministic=True),
                mod_policy=keys.ADMINS,
            )
        )
    return group


def _check_roles(group: configtx_pb2.ConfigGroup, msp_dir: Path) -> None:
    """Refuse role principals that only NodeOUs can classify when they are off."""
    msp = msp_config_pb2.MSPConfig.FromString(group.values[keys.MSP].value)
    if msp_config_pb2.FabricMSPConfig.FromString(msp.config).fabric_node_ous.enable:
        return
    needing = sorted(
        name
        for name, element in group.policies.items()
        if element.policy.type == policies_pb2.Policy.SIGNATURE
        and _names_node_roles(element.policy.value)
    )
    if needing:
        raise ConfigError(
            f"{msp_dir}: the MSP has no NodeOUs (config.yaml), so no identity has "
            f"the peer, client or orderer role the policies {', '.join(needing)} "
            "name; enable NodeOUs or pass --policy NAME=RULE (e.g. with .member)"
        )


def _names_node_roles(value: bytes) -> bool:
    envelope = policies_pb2.SignaturePolicyEnvelope.FromString(value)
    for principal in envelope.identities:
        if principal.principal_classification == msp_principal_pb2.MSPPrincipal.ROLE:
            role = msp_principal_pb2.MSPRole.FromString(principal.principal).role
            if role in _NODE_OU_ROLES:
                return True
    return False


_NODE_OU_ROLES = frozenset(
    {
        msp_principal_pb2.MSPRole.CLIENT,
        msp_principal_pb2.MSPRole.PEER,
        msp_principal_pb2.MSPRole.ORDERER,
    }
)


def group_to_json(group: configtx_pb2.ConfigGroup) -> str:
    """An organisation's group as `channel config` shows the groups of a config."""
    return json_text(config_group_to_json(group))


def group_from_json(text: str, *, source: str) -> configtx_pb2.ConfigGroup:
    """Parse what `group_to_json` wrote.

    Raises:
        ConfigError: not JSON, or not a config group.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source}: not JSON: {error}") from None
    return config_group_from_json(document, source=source)


def group_mspid(group: configtx_pb2.ConfigGroup, *, source: str) -> str:
    """The MSP id an organisation group's MSP value names.

    Raises:
        ConfigError: the group has no X.509 MSP with a name.
    """
    try:
        msp = msp_config_pb2.MSPConfig.FromString(group.values[keys.MSP].value)
        name = msp_config_pb2.FabricMSPConfig.FromString(msp.config).name
    except (DecodeError, KeyError):
        name = ""
    if keys.MSP not in group.values or not name:
        raise ConfigError(f"{source}: the group has no MSP value naming its MSP id")
    return name


def add_organization(
    config: configtx_pb2.Config, mspid: str, group: configtx_pb2.ConfigGroup
) -> configtx_pb2.Config:
    """A copy of `config` with `group` as application organisation `mspid`.

    Raises:
        ConfigError: the channel has no Application group or already has `mspid`.
    """
    updated = configtx_pb2.Config()
    updated.CopyFrom(config)
    if keys.APPLICATION not in updated.channel_group.groups:
        raise ConfigError("the channel config has no Application group")
    members = updated.channel_group.groups[keys.APPLICATION].groups
    if mspid in members:
        raise ConfigError(f"{mspid} is already a member of the channel")
    members[mspid].CopyFrom(group)
    return updated


def parse_anchor_peer(text: str) -> tuple[str, int]:
    """HOST:PORT of an anchor peer.

    Raises:
        ConfigError: not HOST:PORT with a port in 1..65535.
    """
    host, separator, port = text.rpartition(":")
    if not separator or not host or not port.isdigit():
        raise ConfigError(f"--anchor-peer {text!r}: expected HOST:PORT")
    number = int(port)
    if not 0 < number <= _MAX_PORT:
        raise ConfigError(f"--anchor-peer {text!r}: port out of range")
    return host, number


def parse_policy_option(text: str) -> tuple[str, str]:
    """NAME=RULE of `--policy`.

    Raises:
        ConfigError: no NAME before the first '=' or no RULE after it.
    """
    name, separator, rule = text.partition("=")
    if not separator or not name.strip() or not rule.strip():
        raise ConfigError(f"--policy {text!r}: expected NAME=RULE")
    return name.strip(), rule.strip()


# Commands


def add_channel_org_commands(
    channel_commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add `org-group` and `add-org` under `medledger channel`."""
    org_group = channel_commands.add_parser(
        "org-group",
        help="print a new organisation's channel group as JSON, from its MSP folder",
        description=(
            "Build an organisation's application group (default policies by role, "
            "its MSP from the folder's CA, TLS CA and admin certificates and NodeOU "
            "config.yaml, optional anchor peers) and write it in the JSON shape of "
            "`channel config`, to paste under channel_group.groups.Application."
            "groups.<MSPID> or to pass to `channel add-org`."
        ),
    )
    org_group.add_argument("--mspid", required=True, help="the organisation's MSP id")
    org_group.add_argument(
        "--msp", type=Path, required=True, help="the organisation's MSP folder"
    )
    org_group.add_argument(
        "--anchor-peer",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="an anchor peer of the organisation (repeatable)",
    )
    org_group.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="NAME=RULE",
        help=(
            "replace or add a policy of the organisation (repeatable); the defaults: "
            "Readers admin|peer|client, Writers admin|client, Admins admin, "
            "Endorsement peer"
        ),
    )
    org_group.add_argument(
        "-o", "--output", type=Path, help="the JSON file (default: standard output)"
    )
    org_group.set_defaults(handler=run_channel_org_group)

    add_org = channel_commands.add_parser(
        "add-org",
        help="add an organisation to a channel: fetch, edit, sign, update",
        description=(
            "Fetch the channel's current config from the orderer (as the first "
            "--sign admin), add the organisation group of `channel org-group` under "
            "Application, and submit the update signed by every --sign admin; "
            "prints the config block's number. With --update-output, write the "
            "update file instead (signed by the --sign admins if any; with none, "
            "the config is read as --identity)."
        ),
    )
    add_channel_orderer_arguments(add_org)
    add_org.add_argument(
        "--org-group",
        type=Path,
        required=True,
        metavar="ORG.json",
        help="the organisation's group, as `channel org-group` wrote it",
    )
    add_sign_argument(
        add_org,
        who="an admin of a member who signs the update",
        required=False,
        extra_help="the first one submits it; optional with --update-output",
    )
    add_org.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="EDITED.json",
        help="also keep the edited config submitted (default: not kept)",
    )
    add_update_output_argument(add_org)
    add_identity_arguments(
        add_org,
        who="the reader of the config for --update-output (default: the first --sign)",
        required=False,
    )
    add_org.set_defaults(handler=run_channel_add_org)


def run_channel_org_group(args: argparse.Namespace) -> int:
    anchors = tuple(parse_anchor_peer(text) for text in args.anchor_peer)
    policies = dict(parse_policy_option(text) for text in args.policy)
    group = new_organization_group(args.mspid, args.msp, anchors, policies=policies)
    text = group_to_json(group)
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    write_file(args.output, text)
    print(f"wrote the channel group of {args.mspid}")
    return EXIT_OK


def run_channel_add_org(args: argparse.Namespace) -> int:
    source = str(args.org_group)
    group = group_from_json(read_text(args.org_group), source=source)
    mspid = group_mspid(group, source=source)
    signers = [parse_signer(spec) for spec in args.sign]
    reader = config_reader(
        optional_identity(args),
        signers,
        command="channel add-org",
        output_option="--update-output",
        writing=args.update_output is not None,
    )
    outcome = asyncio.run(_add_org(args, mspid, group, signers, reader))
    if isinstance(outcome, str):
        print(outcome, end="")
        return EXIT_OK
    print(f"config block {outcome}")
    print(f"added {mspid} to channel {args.channel}")
    return EXIT_OK


async def _add_org(
    args: argparse.Namespace,
    mspid: str,
    group: configtx_pb2.ConfigGroup,
    signers: list[SigningIdentity],
    reader: SigningIdentity,
) -> int | str:
    """Read the current config as `reader`, add `group`, keep the edit if asked,
    update: the config block's number, or what `write_update_file` says with
    --update-output."""
    pending = await read_for_update(orderer_target(args), args.channel, reader)
    edited = add_organization(pending.config, mspid, group)
    if args.output is not None:
        write_file(args.output, json_text(config_to_json(edited)))
    return await pending.apply(edited, signers, args.update_output)
