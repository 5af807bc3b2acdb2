"""`medledger network deploy --generated DIR`: the admin steps of a `network generate` folder.

Once every node of a generated deployment runs on its host, an admin on the
generating host (where DIR holds every organisation's admin material) runs this one
command instead of the READMEs' step-by-step commands. It reads the spec copy that
`network generate` left in DIR (`SPEC_COPY`), the genesis blocks in DIR/channels/ and
the install packages in DIR/chaincode/, then:

1. waits until every orderer (its participation API) and every peer (its admin
   service) of the chosen channels answers, at the spec's addresses;
2. joins each orderer to the channels it has not joined, then each peer;
3. deploys each chaincode through the lifecycle, unless its definition is committed at
   the spec's sequence already: install where it is not installed, approve for each
   organisation that has not, commit, and send the init transaction when
   `init_required` (`network.deploy.deploy`, as `network up` does);
4. checks that every gateway of the organisations on those channels is ready: it
   answers a signed evaluate of qscc `GetChainInfo` for each of its channels, as the
   organisation's first admin, which needs a peer of the channel it can reach (no
   FAILED_PRECONDITION 'no peers available'). `--no-gateways` skips this, for
   deployments that start their gateways later.

Every step is skipped when it is done, so running the command again changes nothing
but the gateway check, and says so. Failures raise `LaunchError` naming the node (or
every gateway that is not ready) and its address.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common.errors import MedledgerError
from gateway.client import (
    CallTimeouts,
    Gateway,
    GatewayError,
    identity_from_msp,
    signer_from_msp,
)
from network.admin_calls import orderer_admin, orderer_heights, peer_admin, peer_heights
from network.bringup import (
    admin_address,
    join_orderers,
    join_peers,
    orderer_target,
    organization_peers,
    wait_caught_up,
)
from network.cryptogen import crypto_layout
from network.deploy import ChaincodePackageFile, deploy, served_module
from network.launcher import LaunchError, NetworkState
from network.nodeprocs import Material
from network.plan import Plan, Progress, make_plan
from network.spec import load_spec
from network.spec_chaincodes import ChaincodeLanguage, ChaincodeSpec
from peer.lifecycle.package import package_id

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "SPEC_COPY",
    "DeployOptions",
    "GatewayTarget",
    "chain_info_probe",
    "check_gateways",
    "deploy_generated",
    "gateway_targets",
    "run_deploy",
    "write_spec_copy",
]

SPEC_COPY = "consortium.generated.yaml"
"""The spec as `network generate` read it, in its output folder."""
DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True, kw_only=True)
class DeployOptions:
    """What `medledger network deploy` was asked to do (None: every one)."""

    generated: Path
    channel: str | None = None
    chaincode: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    no_gateways: bool = False


def run_deploy(options: DeployOptions, progress: Progress) -> int:
    """Run `deploy_generated` in a loop of its own; how many steps it took."""
    return asyncio.run(deploy_generated(options, progress))


async def deploy_generated(options: DeployOptions, progress: Progress) -> int:
    """Join and deploy what is not yet (see the module docstring); the steps taken.

    Raises:
        LaunchError: the folder is not a `network generate` folder, a node did not
            answer in time, or a node refused a step.
        ConfigError: the spec copy is wrong.
    """
    plan, material = load_generated(options)
    steps: list[str] = []

    def step(line: str) -> None:
        steps.append(line)
        progress(line)

    state = NetworkState(plan.workdir)
    await wait_for_nodes(plan, material, timeout_s=options.timeout_s, progress=progress)
    await join_orderers(plan, material, state, step)
    await join_peers(plan, material, state, step)
    for chaincode in plan.chaincodes:
        for channel_name in chaincode.channels:
            if any(channel.name == channel_name for channel in plan.channels):
                await _deploy_one(plan, material, state, chaincode, channel_name, step)
    if options.no_gateways:
        gateways = "gateways not checked (--no-gateways)"
    else:
        targets = gateway_targets(plan, material)
        await check_gateways(targets, timeout_s=options.timeout_s, progress=progress)
        gateways = "gateways ready"
    if steps:
        progress(f"done: {len(steps)} steps on {options.generated}; {gateways}")
    else:
        progress(
            f"nothing to do; {gateways}: every orderer and peer of "
            f"{options.generated} has joined its channels and every chaincode is "
            "committed at its sequence"
        )
    return len(steps)


async def _deploy_one(
    plan: Plan,
    material: Material,
    state: NetworkState,
    chaincode: ChaincodeSpec,
    channel_name: str,
    step: Progress,
) -> None:
    channel = plan.channel(channel_name)
    caught_up = functools.partial(wait_caught_up, plan, material, state, channel)
    tx_id = await deploy(
        chaincode,
        material.packages[chaincode.name],
        channel=channel_name,
        organizations=organization_peers(plan, material, state, channel),
        orderer=orderer_target(plan, material, state, channel),
        progress=step,
        caught_up=caught_up,
    )
    if tx_id is not None:
        await caught_up()
        step(
            f"deployed chaincode {chaincode.name} {chaincode.version} (sequence "
            f"{chaincode.sequence}) on {channel_name}: committed in tx {tx_id[:16]}…"
        )


# --- the generated folder --------------------------------------------------------


def write_spec_copy(plan: Plan, out_dir: Path) -> Path:
    """Write the spec into `out_dir` for `network deploy`; its path.

    Each chaincode's `path` becomes the output folder's chaincode/ (where its package
    is; deploying needs no source) and its served module is written out, so the copy
    loads wherever the folder is moved.
    """
    assert plan.spec.source is not None, "a generated spec is read from a file"
    document: dict[str, Any] = yaml.safe_load(plan.spec.source.read_text())
    chaincodes = {chaincode.name: chaincode for chaincode in plan.chaincodes}
    for entry in document.get("chaincodes") or []:
        chaincode = chaincodes[entry["name"]]
        entry["path"] = "chaincode"
        entry["version"] = chaincode.version
        if chaincode.language is not ChaincodeLanguage.NODE:
            entry["module"] = served_module(chaincode)
    path = out_dir / SPEC_COPY
    header = (
        f"# {plan.spec.source.name} as `medledger network generate` read it, for "
        "`medledger network deploy`.\n# Chaincode paths name chaincode/, where the "
        "install packages are.\n"
    )
    (out_dir / "chaincode").mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(document, sort_keys=False))
    return path


def load_generated(options: DeployOptions) -> tuple[Plan, Material]:
    """The plan of the folder's spec copy (narrowed to the options) and its material.

    Raises:
        LaunchError: a file is missing, or the channel or chaincode is not in the spec.
    """
    folder = options.generated.resolve()
    spec_path = folder / SPEC_COPY
    if not spec_path.is_file():
        raise LaunchError(
            f"no {SPEC_COPY} in {folder}: give the output folder of `medledger network "
            "generate` (run it again on an older folder; it keeps the material)"
        )
    spec = load_spec(spec_path)
    types = {channel.name: str(channel.orderer.type) for channel in spec.channels}
    plan = _narrowed(make_plan(spec, workdir=folder, orderer_types=types), options)
    material = Material(
        crypto=crypto_layout(plan.spec, folder),
        blocks={
            c.name: _read(folder / "channels" / f"{c.name}.block")
            for c in plan.channels
        },
        etcd_pairs={},
        ccaas_pairs={},
        packages={c.name: _package(folder, c) for c in plan.chaincodes},
    )
    return plan, material


def _narrowed(plan: Plan, options: DeployOptions) -> Plan:
    channels = plan.channels
    if options.channel is not None:
        channels = tuple(c for c in channels if c.name == options.channel)
        if not channels:
            known = ", ".join(c.name for c in plan.channels) or "none"
            raise LaunchError(f"no channel {options.channel} in the spec ({known})")
    names = {channel.name for channel in channels}
    chaincodes = tuple(c for c in plan.chaincodes if names & set(c.channels))
    if options.chaincode is not None:
        chaincodes = tuple(c for c in chaincodes if c.name == options.chaincode)
        if not chaincodes:
            known = ", ".join(c.name for c in plan.chaincodes) or "none"
            raise LaunchError(
                f"no chaincode {options.chaincode} on the chosen channels ({known})"
            )
    return dataclasses.replace(plan, channels=channels, chaincodes=chaincodes)


def _package(folder: Path, chaincode: ChaincodeSpec) -> ChaincodePackageFile:
    data = _read(folder / "chaincode" / f"{chaincode.name}.tar.gz")
    return ChaincodePackageFile(package_id(chaincode.label, data), data)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise LaunchError(
            f"{path}: {error.strerror}; is this a `network generate` folder?"
        ) from None


# --- waiting for the nodes -------------------------------------------------------

Probe = Callable[[], Awaitable[object]]
RETRY_S = 0.2
"""How often a node that does not answer yet is asked again."""


async def wait_for_nodes(
    plan: Plan, material: Material, *, timeout_s: float, progress: Progress
) -> None:
    """Return once every orderer and peer of the plan's channels answers.

    Raises:
        LaunchError: one did not within `timeout_s` (naming it, its address, and its
            last error).
    """
    deadline = time.monotonic() + timeout_s
    for name, address, probe in _probes(plan, material):
        await _wait_answering(name, address, probe, deadline, timeout_s, progress)


def _probes(plan: Plan, material: Material) -> list[tuple[str, str, Probe]]:
    """(node, address, a call it answers) for each orderer and peer, once each."""
    found: dict[str, tuple[str, str, Probe]] = {}
    for channel in plan.channels:
        for orderer in channel.orderer.consenters:
            address = admin_address(orderer)
            admin = orderer_admin(plan, material.crypto, orderer, address)
            call = functools.partial(orderer_heights, admin)
            found.setdefault(orderer.full_name, (orderer.full_name, address, call))
        for mspid in channel.members:
            for peer in plan.spec.organization(mspid).peers:
                target = peer_admin(plan, material.crypto, peer, peer.address)
                call = functools.partial(peer_heights, target)
                found.setdefault(peer.full_name, (peer.full_name, peer.address, call))
    return list(found.values())


async def _wait_answering(
    name: str,
    address: str,
    probe: Probe,
    deadline: float,
    timeout_s: float,
    progress: Progress,
) -> None:
    said = False
    while True:
        remaining = max(deadline - time.monotonic(), RETRY_S)
        try:
            await asyncio.wait_for(probe(), timeout=remaining)
            return
        except (LaunchError, TimeoutError) as error:
            last = str(error) or "no answer"
        if time.monotonic() >= deadline:
            raise LaunchError(
                f"{name} at {address} did not answer within {timeout_s:g}s; is it "
                f"started and reachable from here? ({last})"
            )
        if not said:
            progress(f"waiting for {name} at {address}")
            said = True
        await asyncio.sleep(RETRY_S)


# --- the gateways' readiness -----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GatewayTarget:
    """A gateway to check: where it is, who asks it, and the channels it must serve."""

    name: str
    address: str
    mspid: str
    channels: tuple[str, ...]
    msp_dir: Path
    tls_ca: Path | None


GATEWAY_ATTEMPT_S = 10.0
"""The longest one question to a gateway may take before it is asked again."""
GatewayProbe = Callable[[GatewayTarget, float], Awaitable[object]]
"""Ask a gateway once, within the seconds given; raise when it is not ready."""


def gateway_targets(plan: Plan, material: Material) -> list[GatewayTarget]:
    """Each gateway of an organisation that is a member of one of the plan's channels."""
    targets = []
    for organization in plan.spec.organizations:
        channels = tuple(
            channel.name
            for channel in plan.channels
            if organization.mspid in channel.members
        )
        if not channels or not organization.gateways:
            continue
        layout = material.crypto.organization(organization.mspid)
        msp_dir = layout.user(organization.admins[0].name).msp_dir
        tls_ca = layout.tlsca_cert if plan.settings.tls else None
        targets += [
            GatewayTarget(
                name=gateway.full_name,
                address=gateway.address,
                mspid=organization.mspid,
                channels=channels,
                msp_dir=msp_dir,
                tls_ca=tls_ca,
            )
            for gateway in organization.gateways
        ]
    return targets


async def check_gateways(
    targets: list[GatewayTarget],
    *,
    timeout_s: float,
    progress: Progress,
    probe: GatewayProbe | None = None,
) -> None:
    """Return once every gateway answers for each of its channels (asked together).

    Raises:
        LaunchError: some did not within `timeout_s`, naming each with its address
            and its last error.
    """
    ask = probe or chain_info_probe
    deadline = time.monotonic() + timeout_s
    if targets:
        names = ", ".join(target.name for target in targets)
        progress(f"checking gateways: {names}")
    outcomes = await asyncio.gather(
        *(_gateway_ready(target, ask, deadline, progress) for target in targets)
    )
    failed = [outcome for outcome in outcomes if outcome]
    if failed:
        raise LaunchError(
            f"{len(failed)} of {len(targets)} gateways not ready within "
            f"{timeout_s:g}s (start them, or pass --no-gateways if they start "
            "later):\n  " + "\n  ".join(failed)
        )


async def chain_info_probe(target: GatewayTarget, within_s: float) -> None:
    """A signed evaluate of qscc GetChainInfo on each of the target's channels."""
    gateway = Gateway.connect(
        target.address,
        identity_from_msp(target.msp_dir, target.mspid),
        signer_from_msp(target.msp_dir, target.mspid),
        tls=target.tls_ca,
        timeouts=CallTimeouts(evaluate_s=within_s),
    )
    async with gateway:
        for channel in target.channels:
            contract = gateway.network(channel).contract("qscc")
            await contract.evaluate("GetChainInfo", channel)


async def _gateway_ready(
    target: GatewayTarget, probe: GatewayProbe, deadline: float, progress: Progress
) -> str:
    """'' once the gateway answers; else what to report about it at the deadline."""
    said = False
    while True:
        within = min(max(deadline - time.monotonic(), RETRY_S), GATEWAY_ATTEMPT_S)
        try:
            await asyncio.wait_for(probe(target, within), timeout=within)
        except GatewayError as error:
            last = f"{error.code.name}: {error.args[0]}"
        except (MedledgerError, OSError, TimeoutError) as error:
            last = str(error) or "no answer"
        else:
            channels = ", ".join(target.channels)
            progress(f"gateway {target.name} at {target.address} ready ({channels})")
            return ""
        if time.monotonic() >= deadline:
            return f"{target.name} at {target.address}: {last}"
        if not said:
            progress(f"waiting for gateway {target.name} at {target.address}")
            said = True
        await asyncio.sleep(RETRY_S)
