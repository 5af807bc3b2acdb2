"""`medledger network up|status|logs|down` as a user runs them, on a two-hospital network.

Method: a consortium file like the example's (TLS on, solo orderer, two hospitals
with a peer and a gateway each, the asset chaincode) on free loopback ports; the
commands run as processes and the tests read their output and WORKDIR/state.json.
Then `down` must leave no process behind, `up` must resume the same ledgers (same
heights, chaincode not deployed again) and `up --fresh` must start over. A taken port
must stop `up` before anything starts.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from network.ports import free_ports

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[2]
ASSET = REPOSITORY / "chaincode" / "contracts" / "asset"
COMMAND_TIMEOUT_S = 120.0
NODES = {
    "orderer0.commission.example.com": "orderer",
    "peer0.hospital-a.example.com": "peer",
    "peer0.hospital-b.example.com": "peer",
    "gateway0.hospital-a.example.com": "gateway",
    "gateway0.hospital-b.example.com": "gateway",
}


@dataclass(frozen=True)
class Network:
    """A consortium file, its work directory and the ports it uses."""

    spec: Path
    workdir: Path
    ports: dict[str, int]

    def run(
        self, *arguments: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`medledger network ARGUMENTS --workdir WORKDIR`, output captured."""
        result = subprocess.run(
            [sys.executable, "-m", "network.cli", "network", *arguments],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            cwd=self.workdir.parent,
            check=False,
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def up(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(
            "up",
            "-c",
            str(self.spec),
            "--workdir",
            str(self.workdir),
            *extra,
            check=check,
        )

    def down(self) -> subprocess.CompletedProcess[str]:
        return self.run("down", "--workdir", str(self.workdir))

    def state(self) -> dict[str, object]:
        document: dict[str, object] = json.loads(
            (self.workdir / "state.json").read_text()
        )
        return document

    def nodes(self) -> dict[str, dict[str, object]]:
        nodes = self.state()["nodes"]
        assert isinstance(nodes, dict)
        return nodes

    def heights(self) -> dict[str, str]:
        """Each orderer's and peer's heights as `status` prints them."""
        lines = self.run("status", "--workdir", str(self.workdir)).stdout.splitlines()
        found: dict[str, str] = {}
        for previous, line in itertools.pairwise(lines):
            if line.strip().startswith("heights:"):
                found[previous.split()[0]] = line.strip()
        return found


def write_spec(path: Path, ports: dict[str, int]) -> Path:
    path.write_text(
        f"""
consortium: e2e-hospitals
tls: true
organizations:
  - name: Hospital A
    mspid: HospitalAMSP
    domain: hospital-a.example.com
    peers: [{{name: peer0, host: 127.0.0.1, port: {ports["peer_a"]}}}]
    gateways: [{{name: gateway0, host: 127.0.0.1, port: {ports["gateway_a"]}}}]
    users:
      - {{name: Admin, admin: true}}
      - {{name: dr-lee, attributes: {{role: clinician}}}}
  - name: Hospital B
    mspid: HospitalBMSP
    domain: hospital-b.example.com
    peers: [{{name: peer0, host: 127.0.0.1, port: {ports["peer_b"]}}}]
    gateways: [{{name: gateway0, host: 127.0.0.1, port: {ports["gateway_b"]}}}]
    users: [{{name: Admin, admin: true}}]
  - name: Health Commission
    mspid: HealthCommissionMSP
    domain: commission.example.com
    orderers:
      - name: orderer0
        host: 127.0.0.1
        port: {ports["orderer"]}
        admin_port: {ports["orderer_admin"]}
    users: [{{name: Admin, admin: true}}]
channels:
  - name: medical-records
    members: [HospitalAMSP, HospitalBMSP]
    orderer: {{organizations: [HealthCommissionMSP], batch_timeout: 50ms}}
chaincodes:
  - name: asset
    path: {ASSET}
"""
    )
    return path


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    folder = tmp_path_factory.mktemp("network-up")
    names = ("orderer", "orderer_admin", "peer_a", "peer_b", "gateway_a", "gateway_b")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    network = Network(
        write_spec(folder / "consortium.yaml", ports), folder / "wd", ports
    )
    first = network.up()
    assert "network e2e-hospitals is up" in first.stdout, first.stdout + first.stderr
    try:
        yield network
    finally:
        network.down()


def test_every_node_is_ready_and_recorded(network: Network) -> None:
    """Goal: up waits for every READY line. Method: state.json holds each node's
    READY addresses on the spec's ports, and its process is alive."""
    nodes = network.nodes()

    assert {name: node["kind"] for name, node in nodes.items()} == NODES
    grpc = {name: node["addresses"]["grpc"] for name, node in nodes.items()}  # type: ignore[index]
    assert (
        grpc["peer0.hospital-a.example.com"] == f"127.0.0.1:{network.ports['peer_a']}"
    )
    assert grpc["gateway0.hospital-b.example.com"] == (
        f"127.0.0.1:{network.ports['gateway_b']}"
    )
    admin = nodes["orderer0.commission.example.com"]["addresses"]["admin"]  # type: ignore[index]
    assert admin == f"127.0.0.1:{network.ports['orderer_admin']}"
    for node in nodes.values():
        assert is_running(int(node["pid"])), node  # type: ignore[call-overload]


def test_chaincode_was_deployed_through_the_lifecycle(network: Network) -> None:
    """Goal: up installs, approves and commits the chaincode. Method: state.json
    records the commit, and every ledger holds the genesis block, two approvals and
    the commit (height 4)."""
    deployed = network.state()["chaincodes"]

    assert isinstance(deployed, dict)
    assert deployed["medical-records/asset"]["sequence"] == 1
    assert set(network.heights().values()) == {"heights: medical-records 4"}


def test_status_lists_every_node_running(network: Network) -> None:
    output = network.run("status", "--workdir", str(network.workdir)).stdout

    assert "5 of 5 nodes running" in output
    for name in NODES:
        line = next(line for line in output.splitlines() if line.startswith(name))
        assert " running " in line


def test_logs_print_a_node_log(network: Network) -> None:
    output = network.run("logs", "peer0.hospital-b", "--workdir", str(network.workdir))

    assert "peer started name=peer0.hospital-b.example.com" in output.stdout


def test_a_taken_port_fails_before_anything_starts(
    network: Network, tmp_path: Path
) -> None:
    """Goal: a port clash with another process is reported, naming node and port.
    Method: the running network holds the ports; a second work directory with the
    same spec cannot start, and records no node."""
    other = Network(network.spec, tmp_path / "wd", network.ports)

    result = other.up(check=False)

    assert result.returncode == 1
    assert (
        f"orderer0.commission.example.com: its gRPC port {network.ports['orderer']} "
        "on 127.0.0.1 is already in use"
    ) in result.stderr
    assert other.nodes() == {}


def test_a_transaction_commits_through_a_gateway(network: Network) -> None:
    """Goal: the network works for an application. Method: `medledger tx submit` as
    a Hospital A clinician through its gateway, over TLS; the peers launch the
    installed chaincode and the transaction commits VALID."""
    organization = network.workdir / "crypto/organizations/hospital-a.example.com"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "network.cli",
            "tx",
            "submit",
            "--gateway",
            f"127.0.0.1:{network.ports['gateway_a']}",
            "--msp",
            str(organization / "users/dr-lee@hospital-a.example.com/msp"),
            "--mspid",
            "HospitalAMSP",
            "--channel",
            "medical-records",
            "--tls-ca",
            str(organization / "tlsca/tlsca.hospital-a.example.com-cert.pem"),
            "--chaincode",
            "asset",
            "CreateAsset",
            "a1",
            "blue",
            "5",
            "dr-lee",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert ": VALID" in result.stderr
    # The submit returned once A's peer committed block 4; B's may still lag.
    wait_for_block_on_b(network, 4)
    assert set(network.heights().values()) == {"heights: medical-records 5"}


def test_down_leaves_no_process_and_up_resumes_the_same_ledgers(
    network: Network,
) -> None:
    """Goal: down stops everything (chaincode processes too); up resumes. Method:
    note every PID and its descendants, down, check all are gone; up again: the
    heights are the same (nothing re-joined or re-deployed) and new PIDs run."""
    before = network.heights()
    pids = [int(node["pid"]) for node in network.nodes().values()]  # type: ignore[call-overload]
    family = pids + [child for pid in pids for child in descendants(pid)]
    assert len(family) > len(pids), "the peers run their chaincode as child processes"

    network.down()

    assert [pid for pid in family if is_running(pid)] == []
    resumed = network.up()
    assert "joined" not in resumed.stdout
    assert "committed chaincode" not in resumed.stdout
    assert network.heights() == before
    assert not set(pids) & {int(n["pid"]) for n in network.nodes().values()}  # type: ignore[call-overload]


def test_fresh_starts_over(network: Network) -> None:
    """Goal: --fresh wipes the work directory. Method: new CA certificates, and the
    ledgers start again from the genesis block (height back to 4 after deploying)."""
    ca = network.workdir / "crypto/organizations/hospital-a.example.com/ca"
    old_ca = (ca / "ca.hospital-a.example.com-cert.pem").read_bytes()

    result = network.up("--fresh")

    assert "committed chaincode asset" in result.stdout
    assert (ca / "ca.hospital-a.example.com-cert.pem").read_bytes() != old_ca
    assert set(network.heights().values()) == {"heights: medical-records 4"}


def wait_for_block_on_b(network: Network, number: int) -> None:
    """Return once Hospital B's peer has committed block `number` (`medledger events
    blocks` through B's gateway, which relays to B's own peer)."""
    organization = network.workdir / "crypto/organizations/hospital-b.example.com"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "network.cli",
            "events",
            "blocks",
            "--gateway",
            f"127.0.0.1:{network.ports['gateway_b']}",
            "--msp",
            str(organization / "users/Admin@hospital-b.example.com/msp"),
            "--mspid",
            "HospitalBMSP",
            "--channel",
            "medical-records",
            "--tls-ca",
            str(organization / "tlsca/tlsca.hospital-b.example.com-cert.pem"),
            "--start-block",
            str(number),
            "--count",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["block"] == number, result.stdout


def is_running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in children.read_text().split():
            found += [int(child), *descendants(int(child))]
    return found
