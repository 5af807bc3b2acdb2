"""`medledger network deploy --generated DIR` on a generated two-hospital network.

Method: a small spec (Hospital A with the solo orderer, a peer and a gateway;
Hospital B with a peer and a gateway; TLS on; the asset chaincode, endorsed by both
hospitals, with an init transaction) on free loopback ports goes through `network
generate`; the orderer and the peers start from their own folders with the command
generate wrote (as processes, cwd = the folder), and `network deploy --no-gateways`
runs at once: it waits until they answer (no READY line is awaited before it), joins
and deploys, and succeeds without gateways. A second run without the flag fails after
its short timeout naming both gateways, which are not started yet. Then the gateways
start the same way, a third run changes nothing and finds them ready, and once every
node has printed its READY line a transaction is submitted through A's gateway and
read back through B's. Every process is stopped at the end.

The gateways start after the joins because a gateway that asked a peer for the
channel before the peer joined asks again only after a back-off (up to 5 s), and
refuses transactions meanwhile.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from network.deploy_generated import SPEC_COPY
from network.generate import GeneratedNode, generate
from tests.e2e.multihost.deployment import MEDLEDGER, medledger_argv, network_deploy
from tests.support.etcd import free_ports
from tests.support.processes import CliProcess

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[2]
ASSET = REPOSITORY / "chaincode" / "contracts" / "asset"
CHANNEL = "medical-records"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
COMMAND_TIMEOUT_S = 120.0
SHORT_TIMEOUT = "5"
"""`network deploy --timeout` for the run that must fail on the gateways not started:
it also bounds that run's calls to the orderer and the peers (a fresh process's TLS
handshakes and signed admin calls), which a loaded machine can take seconds over."""
STOP_ORDER = ("gateway", "peer", "orderer")
"""Which nodes stop first (the word after `medledger` in their commands)."""


@dataclass
class Deployed:
    """The generated folder, its running nodes and what `network deploy` printed."""

    folder: Path
    ports: dict[str, int]
    processes: dict[str, CliProcess] = field(default_factory=dict)
    deploys: list[str] = field(default_factory=list)
    without_gateways: subprocess.CompletedProcess[str] | None = None

    def organization(self, domain: str) -> Path:
        return self.folder / "organizations" / domain


def write_spec(path: Path, ports: dict[str, int]) -> Path:
    """Two hospitals with a peer and a gateway each; A also runs the solo orderer."""
    hospital_a = hospital("a", "dr-lee", ports)
    hospital_a["orderers"] = [
        {
            "name": "orderer0",
            "host": HOST,
            "port": ports["orderer"],
            "admin_port": ports["orderer_admin"],
        }
    ]
    document = {
        "consortium": "deploy-hospitals",
        "tls": True,
        "organizations": [hospital_a, hospital("b", "dr-garcia", ports)],
        "channels": [
            {
                "name": CHANNEL,
                "members": ["HospitalAMSP", "HospitalBMSP"],
                "orderer": {
                    "type": "solo",
                    "organizations": ["HospitalAMSP"],
                    "batch_timeout": "50ms",
                },
            }
        ],
        "chaincodes": [
            {
                "name": "asset",
                "path": str(ASSET),
                "endorsement_policy": "AND('HospitalAMSP.peer', 'HospitalBMSP.peer')",
                "init_required": True,
            }
        ],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def hospital(letter: str, clinician: str, ports: dict[str, int]) -> dict[str, Any]:
    """Hospital A or B of the spec: a peer, a gateway, an admin and a clinician."""
    return {
        "name": f"Hospital {letter.upper()}",
        "mspid": f"Hospital{letter.upper()}MSP",
        "domain": f"hospital-{letter}.example.com",
        "peers": [{"name": "peer0", "host": HOST, "port": ports[f"peer_{letter}"]}],
        "gateways": [
            {"name": "gateway0", "host": HOST, "port": ports[f"gateway_{letter}"]}
        ],
        "users": [
            {"name": "Admin", "admin": True},
            {"name": clinician, "attributes": {"role": "clinician"}},
        ],
    }


def start(node: GeneratedNode, logs: Path) -> CliProcess:
    """The node's generated command, run inside its folder (stderr to a log)."""
    stderr_path = logs / f"{node.name}.log"
    with stderr_path.open("w") as stderr:
        popen = subprocess.Popen(
            medledger_argv(node),
            cwd=node.folder,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    return CliProcess(popen, stderr_path)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp("network-deploy")
    names = ("orderer", "orderer_admin", "peer_a", "peer_b", "gateway_a", "gateway_b")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    folder = root / "generated"
    nodes = generate(write_spec(root / "spec.yaml", ports), folder, progress=print)
    running = Deployed(folder, ports)
    (root / "logs").mkdir()
    kinds = {node.name: node.command.split()[1] for node in nodes}
    try:
        for node in nodes:
            if kinds[node.name] != "gateway":
                running.processes[node.name] = start(node, root / "logs")
        running.deploys.append(network_deploy(folder, "--no-gateways").stdout)
        print(running.deploys[-1])
        running.without_gateways = medledger(
            "network", "deploy", "--generated", str(folder), "--timeout", SHORT_TIMEOUT
        )
        print(running.without_gateways.stdout, running.without_gateways.stderr)
        for node in nodes:
            if kinds[node.name] == "gateway":
                running.processes[node.name] = start(node, root / "logs")
        running.deploys.append(network_deploy(folder).stdout)
        print(running.deploys[-1])
        for process in running.processes.values():
            process.wait_ready(READY_TIMEOUT_S)
        yield running
    finally:
        for kind in STOP_ORDER:
            for name, process in running.processes.items():
                if kinds[name] == kind:
                    process.stop()


def test_generate_leaves_the_spec_for_deploy(deployed: Deployed) -> None:
    """Goal: the folder carries what deploy reads. Method: the spec copy names the
    chaincode's packages folder and its module, and the top README names the command."""
    copy = (deployed.folder / SPEC_COPY).read_text()
    readme = (deployed.folder / "README.txt").read_text()

    assert "path: chaincode\n" in copy
    assert "module: chaincode.contracts.asset" in copy
    assert "medledger network deploy --generated ." in readme


def test_the_first_deploy_joins_and_deploys_everything(deployed: Deployed) -> None:
    """Goal: one command does every admin step. Method: its lines name the orderer's
    and both peers' joins, an install on each peer, both approvals, the commit and
    the init transaction."""
    lines = deployed.deploys[0].splitlines()

    joined = sorted(line.split()[1] for line in lines if line.startswith("joined "))
    assert joined == [
        "orderer0.hospital-a.example.com",
        "peer0.hospital-a.example.com",
        "peer0.hospital-b.example.com",
    ], lines
    assert len([line for line in lines if line.startswith("installed ")]) == 2, lines
    approved = sorted(line.split()[0] for line in lines if " approved asset " in line)
    assert approved == ["HospitalAMSP", "HospitalBMSP"], lines
    assert any(line.startswith("deployed chaincode asset 1.0") for line in lines)
    assert any(line.startswith("initialized asset") for line in lines), lines
    assert lines[-1].endswith("; gateways not checked (--no-gateways)"), lines


def test_deploy_names_the_gateways_that_are_not_started(deployed: Deployed) -> None:
    """Goal: a deployment does not end with its gateways down unnoticed. Method: the
    run after the joins, before the gateways start: exit 1 after its short timeout,
    naming each gateway with its address (nothing listens there: UNAVAILABLE)."""
    result = deployed.without_gateways
    assert result is not None

    assert result.returncode == 1, result.stdout + result.stderr
    expected = f"2 of 2 gateways not ready within {SHORT_TIMEOUT}s"
    assert expected in result.stderr, result.stderr
    assert "--no-gateways" in result.stderr
    for letter in ("a", "b"):
        address = f"{HOST}:{deployed.ports[f'gateway_{letter}']}"
        assert (
            f"gateway0.hospital-{letter}.example.com at {address}: UNAVAILABLE"
        ) in result.stderr, result.stderr
    assert "checking gateways: gateway0.hospital-a" in result.stdout, result.stdout


def test_the_second_deploy_changes_nothing_but_checks_the_gateways(
    deployed: Deployed,
) -> None:
    """Goal: running again is a no-op apart from the gateway check. Method: once the
    gateways run, the next deploy takes no step and reports both gateways ready."""
    lines = deployed.deploys[1].splitlines()
    ready = [line for line in lines if line.startswith("gateway ")]

    assert sorted(line.split()[1] for line in ready) == [
        "gateway0.hospital-a.example.com",
        "gateway0.hospital-b.example.com",
    ], lines
    assert all(line.endswith(f" ready ({CHANNEL})") for line in ready), lines
    assert [
        line
        for line in lines
        if not line.startswith(("waiting for ", "checking gateways: ", "gateway "))
    ] == [
        f"nothing to do; gateways ready: every orderer and peer of {deployed.folder} "
        "has joined its channels and every chaincode is committed at its sequence"
    ]


def test_deploy_narrowed_to_a_channel_and_chaincode(deployed: Deployed) -> None:
    """Goal: --channel and --chaincode choose what to deploy. Method: the deployed
    channel and chaincode: nothing to do; a channel or chaincode the spec does not
    have: a non-zero exit naming what it has."""
    folder = str(deployed.folder)

    chosen = network_deploy(
        deployed.folder, "--channel", CHANNEL, "--chaincode", "asset"
    )
    no_channel = medledger("network", "deploy", "--generated", folder, "--channel", "x")
    no_chaincode = medledger(
        "network", "deploy", "--generated", folder, "--chaincode", "x"
    )

    assert chosen.stdout.splitlines()[-1].startswith("nothing to do"), chosen.stdout
    assert no_channel.returncode == 1
    assert f"no channel x in the spec ({CHANNEL})" in no_channel.stderr
    assert no_chaincode.returncode == 1
    assert "no chaincode x on the chosen channels (asset)" in no_chaincode.stderr


def test_a_transaction_commits_and_reads_back_through_the_gateways(
    deployed: Deployed,
) -> None:
    """Goal: the deployed network serves an application. Method: CreateAsset through
    A's gateway commits VALID (endorsed by both peers); ReadAsset through B's gateway
    returns it, and the asset the init transaction created."""
    submitted = tx(
        deployed,
        "submit",
        "hospital-a.example.com",
        "dr-lee",
        ["CreateAsset", "a1", "blue", "5", "dr-lee", "100"],
    )
    # The submit returned once A's peer committed; wait for B's before reading there.
    committed = re.search(r"in block (\d+): VALID", submitted.stderr)
    assert committed is not None, submitted.stderr
    wait_for_block(deployed, "hospital-b.example.com", "dr-garcia", committed[1])
    read = tx(
        deployed, "evaluate", "hospital-b.example.com", "dr-garcia", ["ReadAsset", "a1"]
    )
    initial = tx(
        deployed,
        "evaluate",
        "hospital-b.example.com",
        "dr-garcia",
        ["ReadAsset", "asset1"],
    )

    assert ": VALID" in submitted.stderr, submitted.stderr
    assert '"a1"' in read.stdout, read.stdout
    assert '"blue"' in read.stdout, read.stdout
    assert '"Tomoko"' in initial.stdout, initial.stdout


def test_deploy_names_a_node_that_does_not_answer(tmp_path: Path) -> None:
    """Goal: a clear failure when a node is not up. Method: a generated folder whose
    nodes never started; deploy exits non-zero within its timeout, naming the first
    node it waited for and its address."""
    names = ("orderer", "orderer_admin", "peer_a", "peer_b", "gateway_a", "gateway_b")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    generate(
        write_spec(tmp_path / "spec.yaml", ports), tmp_path / "out", progress=print
    )

    result = medledger(
        "network", "deploy", "--generated", str(tmp_path / "out"), "--timeout", "0.5"
    )

    assert result.returncode == 1
    assert (
        f"orderer0.hospital-a.example.com at {HOST}:{ports['orderer_admin']} did "
        "not answer within 0.5s"
    ) in result.stderr, result.stderr


def test_deploy_refuses_a_folder_generate_did_not_write(tmp_path: Path) -> None:
    result = medledger("network", "deploy", "--generated", str(tmp_path))

    assert result.returncode == 1
    assert f"no {SPEC_COPY} in {tmp_path}" in result.stderr, result.stderr


def tx(
    deployed: Deployed, command: str, domain: str, user: str, call: list[str]
) -> subprocess.CompletedProcess[str]:
    """`medledger tx submit|evaluate` as `user` through the gateway of `domain`."""
    organization = deployed.organization(domain)
    gateway = "gateway_a" if domain.startswith("hospital-a") else "gateway_b"
    mspid = "HospitalAMSP" if gateway == "gateway_a" else "HospitalBMSP"
    result = medledger(
        "tx",
        command,
        *("--gateway", f"{HOST}:{deployed.ports[gateway]}"),
        *("--msp", str(organization / f"users/{user}@{domain}/msp"), "--mspid", mspid),
        *("--channel", CHANNEL, "--chaincode", "asset"),
        *("--tls-ca", str(organization / f"tlsca/tlsca.{domain}-cert.pem"), *call),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def wait_for_block(deployed: Deployed, domain: str, user: str, number: str) -> None:
    """Return once the peer behind `domain`'s gateway has committed block `number`
    (`medledger events blocks`: the gateway relays to its own organisation's peer)."""
    organization = deployed.organization(domain)
    gateway = "gateway_a" if domain.startswith("hospital-a") else "gateway_b"
    mspid = "HospitalAMSP" if gateway == "gateway_a" else "HospitalBMSP"
    result = medledger(
        "events",
        "blocks",
        *("--gateway", f"{HOST}:{deployed.ports[gateway]}"),
        *("--msp", str(organization / f"users/{user}@{domain}/msp"), "--mspid", mspid),
        *("--channel", CHANNEL, "--start-block", number, "--count", "1"),
        *("--tls-ca", str(organization / f"tlsca/tlsca.{domain}-cert.pem")),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'"block": {number},' in result.stdout, result.stdout


def medledger(*arguments: str) -> subprocess.CompletedProcess[str]:
    """`medledger ARGUMENTS` as a process, its output captured."""
    return subprocess.run(
        [*MEDLEDGER, *arguments],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
