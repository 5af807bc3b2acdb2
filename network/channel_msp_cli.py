"""`medledger channel update-org`: a member's MSP definition, renewed from its folder.

An organisation's MSP definition in a channel's config (its ``MSP`` config value:
root and intermediate CAs, admins, revocation lists, NodeOUs, TLS roots) is what every
peer and orderer of the channel judges that organisation's identities by. When the
organisation's folder changes — its CA revoked a certificate (`crypto revoke`), it
rotated a CA, or it added a TLS root — the channel learns of it by a config update,
as in Fabric (fetch the config, replace the org's MSP value, compute the update, have
the org's admins sign, submit):

    update-org  fetches the channel's config from the orderer, builds the MSP value
                from the folder with `network.genesis.organization_group` (the code
                that builds a genesis block's groups), puts it in every group of the
                organisation (under Application and, for an ordering organisation,
                under Orderer), keeping the groups' policies, other values and
                mod_policies, and hands the edit to `channel_update_cli.update_channel`,
                which computes the update, collects the ``--sign`` signatures and
                submits it. It prints the config block's number. With
                ``--update-output FILE`` it writes the update file instead, as
                `channel add-org` does: signed by the ``--sign`` admins if any
                (unsigned with none: the config is then read as ``--identity``, a
                member of ``--mspid``), for the admins to sign with `channel signconfigtx`
                and someone to submit with `channel update -f`.

The MSP value's mod_policy is the organisation's ``Admins`` in the genesis layout, so
one admin of the organisation signs; after the config block, peers and orderers refuse
a revoked identity's proposals, transactions and Deliver requests.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from common.channelconfig import keys
from common.errors import ConfigError
from common.msp import SigningIdentity, load_signing_identity
from network.channel_common import (
    add_channel_orderer_arguments,
    add_sign_argument,
    add_update_output_argument,
    config_reader,
    orderer_target,
    parse_signer,
)
from network.channel_update_cli import read_for_update
from network.genesis import organization_group
from protos.common import configtx_pb2

__all__ = [
    "add_channel_msp_commands",
    "msp_value",
    "replace_organization_msp",
]

EXIT_OK = 0


def msp_value(msp_dir: Path, mspid: str) -> configtx_pb2.ConfigValue:
    """The ``MSP`` config value of organisation `mspid` from its MSP folder, exactly
    as a genesis block built now would hold it.

    Raises:
        ConfigError: the folder is missing or unreadable.
    """
    group = organization_group({}, msp_dir=msp_dir, mspid=mspid)
    return group.values[keys.MSP]


def replace_organization_msp(
    config: configtx_pb2.Config, mspid: str, value: configtx_pb2.ConfigValue
) -> tuple[configtx_pb2.Config, tuple[str, ...]]:
    """A copy of `config` where every group of organisation `mspid` (under
    Application and Orderer) has `value`'s MSP bytes; the mod_policy of each MSP value
    is kept. Also the paths of the groups changed, for messages.

    Raises:
        ConfigError: the channel has no organisation `mspid`, or its MSP is already
            exactly `value`.
    """
    updated = configtx_pb2.Config()
    updated.CopyFrom(config)
    found: list[str] = []
    changed: list[str] = []
    for section in (keys.APPLICATION, keys.ORDERER):
        if section not in updated.channel_group.groups:
            continue
        members = updated.channel_group.groups[section].groups
        if mspid not in members:
            continue
        group = members[mspid]
        found.append(f"{section}/{mspid}")
        current = group.values.get(keys.MSP)
        if current is not None and current.value == value.value:
            continue
        fresh = configtx_pb2.ConfigValue(
            value=value.value,
            mod_policy=current.mod_policy if current is not None else value.mod_policy,
            version=current.version if current is not None else 0,
        )
        group.values[keys.MSP].CopyFrom(fresh)
        changed.append(f"{section}/{mspid}")
    if not found:
        raise ConfigError(f"the channel has no organisation {mspid}")
    if not changed:
        raise ConfigError(
            f"the channel's MSP definition of {mspid} already matches the folder: "
            "nothing to update"
        )
    return updated, tuple(changed)


# Command


def add_channel_msp_commands(
    channel_commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add `update-org` under `medledger channel`."""
    update_org = channel_commands.add_parser(
        "update-org",
        help="renew a member's MSP definition (CRLs, CAs, TLS roots) from its folder",
        description=(
            "Fetch the channel's config from the orderer (as the first --sign "
            "admin), replace the organisation's MSP definition with the one built "
            "from its MSP folder now (revocation lists, root and intermediate CAs, "
            "admins, NodeOUs, TLS roots), keep its policies and other values, and "
            "submit the update signed by every --sign admin; prints the config "
            "block's number. With --update-output, write the update file instead "
            "(signed by the --sign admins if any; with none, the config is read as "
            "--identity)."
        ),
    )
    add_channel_orderer_arguments(update_org)
    update_org.add_argument("--mspid", required=True, help="the organisation's MSP id")
    update_org.add_argument(
        "--msp",
        type=Path,
        required=True,
        metavar="ORG_MSP_DIR",
        help="the organisation's MSP folder (OUT/organizations/<domain>/msp)",
    )
    add_sign_argument(
        update_org,
        who="an admin who signs the update (the organisation's own)",
        required=False,
        extra_help="the first one submits it; optional with --update-output",
    )
    add_update_output_argument(update_org)
    update_org.add_argument(
        "--identity",
        type=Path,
        metavar="MSP_DIR",
        help=(
            "MSP folder of the reader of the config for --update-output, a member of "
            "--mspid (default: the first --sign)"
        ),
    )
    update_org.set_defaults(handler=run_channel_update_org)


def run_channel_update_org(args: argparse.Namespace) -> int:
    value = msp_value(args.msp, args.mspid)
    signers = [parse_signer(spec) for spec in args.sign]
    identity = None
    if args.identity is not None:
        identity = load_signing_identity(args.identity, mspid=args.mspid)
    reader = config_reader(
        identity,
        signers,
        command="channel update-org",
        output_option="--update-output",
        writing=args.update_output is not None,
    )
    outcome, changed = asyncio.run(_update_org(args, value, signers, reader))
    if isinstance(outcome, str):
        print(outcome, end="")
        return EXIT_OK
    print(f"config block {outcome}")
    print(
        f"updated the MSP of {args.mspid} ({', '.join(changed)}) "
        f"on channel {args.channel}"
    )
    return EXIT_OK


async def _update_org(
    args: argparse.Namespace,
    value: configtx_pb2.ConfigValue,
    signers: list[SigningIdentity],
    reader: SigningIdentity,
) -> tuple[int | str, tuple[str, ...]]:
    """Read the current config as `reader`, replace the MSP, update: the config
    block's number, or what `write_update_file` says with --update-output; and the
    groups changed."""
    pending = await read_for_update(orderer_target(args), args.channel, reader)
    edited, changed = replace_organization_msp(pending.config, args.mspid, value)
    return await pending.apply(edited, signers, args.update_output), changed
