"""`medledger chaincode calculatepackageid` and the client of `getinstalledpackage`.

calculatepackageid runs offline: it parses the file as the peer does and prints the
package id, or one line naming the file and what is wrong with it. The client side of
`GetInstalledChaincodePackage` is checked against a fake endorser on 127.0.0.1 that
answers with chosen bytes: the client refuses bytes that are not the package asked for.
The real peer (admins only, unknown ids) is in
tests/integration/peer/test_lifecycle_package_cli.py.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from common.crypto import PrivateKey
from common.crypto.issue import Subject, issue_ca
from common.msp import Identity, SigningIdentity
from common.protoutil import parse_signed_proposal
from network.cli import build_parser, main
from network.lifecycle_client import (
    LifecycleCommandError,
    Target,
    get_installed_package,
)
from peer.lifecycle.package import build_package, package_id
from protos.peer import proposal_pb2, proposal_response_pb2
from protos.peer.lifecycle import lifecycle_pb2 as lb

LABEL = "records_1"


@pytest.fixture
def package(tmp_path: Path) -> bytes:
    source = tmp_path / "code" / "records"
    source.mkdir(parents=True)
    (source / "__init__.py").write_text("contracts = []\n")
    data, _ = build_package(label=LABEL, kind="python", source=source)
    return data


def tar_gz(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def with_link() -> bytes:
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        link = tarfile.TarInfo("metadata.json")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    return buffer.getvalue()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["chaincode", *argv])
    out, err = capsys.readouterr()
    return status, out, err


# calculatepackageid


def test_the_package_id_is_the_label_and_the_files_sha256(
    package: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "records.tar.gz"
    path.write_bytes(package)
    assert run(capsys, "calculatepackageid", str(path)) == (
        0,
        f"{package_id(LABEL, package)}\n",
        "",
    )
    status, out, _ = run(capsys, "calculatepackageid", str(path), "-O", "json")
    assert (status, json.loads(out)) == (0, {"package_id": package_id(LABEL, package)})


def test_the_id_is_what_package_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "asset"
    source.mkdir()
    (source / "connection.json").write_text('{"address": "127.0.0.1:9999"}')
    path = tmp_path / "asset.tar.gz"
    status, packaged, _ = run(
        capsys,
        *("package", "--label", "asset_ccaas", "--lang", "ccaas"),
        *("--path", str(source), "-o", str(path)),
    )
    assert status == 0
    status, calculated, _ = run(capsys, "calculatepackageid", str(path))
    assert (status, packaged) == (0, f"Package ID: {calculated}")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not a gzipped tar"),
        (b"not a package", "not a gzipped tar"),
        (gzip.compress(b"plain text, no tar"), "not a gzipped tar"),
        (tar_gz({"metadata.json": b'{"label": "x"}'}), "did not find a code package"),
        (tar_gz({"code.tar.gz": b""}), "did not find any package metadata"),
        (
            tar_gz({"metadata.json": b"{not json", "code.tar.gz": b""}),
            "could not unmarshal metadata.json as json",
        ),
        (
            tar_gz({"metadata.json": b'["list"]', "code.tar.gz": b""}),
            "metadata.json is not a JSON object",
        ),
        (
            tar_gz({"metadata.json": b'{"label": "../x"}', "code.tar.gz": b""}),
            "invalid label '../x'",
        ),
        (
            tar_gz({"metadata.json": b'{"label": 7}', "code.tar.gz": b""}),
            "'label' in metadata.json is not a string",
        ),
        (with_link(), "tar entry metadata.json of the chaincode package is not"),
    ],
)
def test_a_file_that_is_no_package_is_one_line_of_error(
    content: bytes,
    reason: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "bad.tar.gz"
    path.write_bytes(content)
    status, out, err = run(capsys, "calculatepackageid", str(path))
    assert (status, out) == (1, "")
    assert err.startswith(
        f"medledger: error: {path}: not a chaincode install package: "
    )
    assert reason in err
    assert err.count("\n") == 1


def test_a_missing_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "absent.tar.gz"
    assert run(capsys, "calculatepackageid", str(path)) == (
        1,
        "",
        f"medledger: error: {path}: No such file or directory\n",
    )


def test_calculatepackageid_needs_exactly_one_file() -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as none:
        parser.parse_args(["chaincode", "calculatepackageid"])
    with pytest.raises(SystemExit) as two:
        parser.parse_args(["chaincode", "calculatepackageid", "a", "b"])
    assert none.value.code == two.value.code == 2


# getinstalledpackage: arguments


def test_getinstalledpackage_takes_the_peer_arguments() -> None:
    args = build_parser().parse_args(
        [
            *("chaincode", "getinstalledpackage", "--package-id", "cc:00"),
            *("--peer", "peer0:7051", "--identity", "msp", "--mspid", "AMSP"),
            *("--tls-ca", "ca.pem", "--server-name", "peer0.a"),
        ]
    )
    assert (args.package_id, args.output_directory, args.peer) == (
        "cc:00",
        Path(),
        "peer0:7051",
    )
    assert (args.tls_ca, args.server_name) == ([Path("ca.pem")], "peer0.a")


@pytest.mark.parametrize("missing", ["--package-id", "--peer", "--identity", "--mspid"])
def test_getinstalledpackage_requires(missing: str) -> None:
    given = {
        "--package-id": "cc:00",
        "--peer": "p:1",
        "--identity": "msp",
        "--mspid": "AMSP",
    }
    argv = ["chaincode", "getinstalledpackage"]
    for flag, value in given.items():
        if flag != missing:
            argv += [flag, value]
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2


# getinstalledpackage: the client against a fake endorser


Answer = Callable[[lb.GetInstalledChaincodePackageArgs], bytes]


@pytest.fixture
def signer() -> SigningIdentity:
    key = PrivateKey.generate()
    now = datetime.now(UTC)
    certificate = issue_ca(
        Subject(common_name="Admin@a.example.com"),
        key=key,
        not_before=now - timedelta(hours=1),
        not_after=now + timedelta(hours=1),
    )
    identity = Identity.from_certificate_pem(mspid="AMSP", pem=certificate.pem)
    return SigningIdentity(identity, key)


class FakeEndorser:
    """Answers every `GetInstalledChaincodePackage` proposal with `answer`'s bytes."""

    def __init__(self) -> None:
        self.answer: Answer = lambda _args: b""
        self.functions: list[bytes] = []

    async def process(
        self, request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        proposal = parse_signed_proposal(
            proposal_pb2.SignedProposal.FromString(request)
        )
        function, arguments = proposal.args
        self.functions.append(function)
        args = lb.GetInstalledChaincodePackageArgs.FromString(arguments)
        result = lb.GetInstalledChaincodePackageResult(
            chaincode_install_package=self.answer(args)
        )
        response = proposal_response_pb2.ProposalResponse()
        response.response.status = 200
        response.response.payload = result.SerializeToString()
        return response.SerializeToString()


@pytest.fixture
async def endorser() -> AsyncIterator[tuple[FakeEndorser, Target]]:
    fake = FakeEndorser()
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "protos.Endorser",
        {"ProcessProposal": grpc.unary_unary_rpc_method_handler(fake.process)},
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield fake, Target(address=f"127.0.0.1:{port}", timeout_s=5.0)
    finally:
        await server.stop(None)


async def test_the_client_returns_the_package_asked_for(
    endorser: tuple[FakeEndorser, Target], signer: SigningIdentity, package: bytes
) -> None:
    fake, target = endorser
    fake.answer = lambda _args: package
    wanted = package_id(LABEL, package)
    assert await get_installed_package(target, signer, wanted) == package
    assert fake.functions == [b"GetInstalledChaincodePackage"]


async def test_the_client_refuses_bytes_of_another_package(
    endorser: tuple[FakeEndorser, Target], signer: SigningIdentity, package: bytes
) -> None:
    fake, target = endorser
    fake.answer = lambda _args: package
    wanted = f"{LABEL}:{'0' * 64}"
    with pytest.raises(LifecycleCommandError) as refused:
        await get_installed_package(target, signer, wanted)
    assert str(refused.value) == (
        f"peer {target.address}: asked for package '{wanted}', got "
        f"'{package_id(LABEL, package)}'"
    )


async def test_the_client_refuses_bytes_that_are_no_package(
    endorser: tuple[FakeEndorser, Target], signer: SigningIdentity
) -> None:
    fake, target = endorser
    fake.answer = lambda _args: b"garbage"
    wanted = f"{LABEL}:{'0' * 64}"
    with pytest.raises(LifecycleCommandError, match="does not parse: the chaincode"):
        await get_installed_package(target, signer, wanted)
