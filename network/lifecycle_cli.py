"""`medledger chaincode ...`: Fabric's `peer lifecycle chaincode` commands.

    package               make an install package from a folder (no network)
    install               install a package on a peer
    queryinstalled        list the packages installed on a peer
    getinstalledpackage   fetch an installed package's file from a peer
    calculatepackageid    the package id of a package file (no network)
    approve               approve a definition for the admin's organisation
    checkcommitreadiness  which organisations approved a definition
    commit                commit a definition, endorsed by one peer per organisation
    queryapproved         the organisation's approved definition
    querycommitted        the committed definition(s) of a channel

Every network command signs with an admin identity from an MSP folder (`--identity`
with `--mspid`); approve and commit also need an orderer and wait until the first
peer has committed the transaction. Queries print text, or JSON with `--output json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from common.errors import ConfigError, PolicyError
from common.msp import SigningIdentity, load_signing_identity
from common.policies import from_string
from common.tls import TlsFiles
from network.cli import add_command_group
from network.lifecycle_client import (
    Definition,
    Target,
    approve,
    check_commit_readiness,
    commit,
    get_installed_package,
    install,
    query_approved,
    query_committed,
    query_installed,
)
from peer.errors import InvalidPackage
from peer.lifecycle.package import (
    PACKAGE_TYPES,
    build_package,
    package_id,
    parse_package,
)
from protos.peer import collection_pb2, policy_pb2
from protos.peer.lifecycle import lifecycle_pb2 as lb

__all__ = ["add_chaincode_commands", "collections_from_json"]

EXIT_OK = 0
EXIT_USAGE = 2

_T = TypeVar("_T")
_V = TypeVar("_V")


def add_chaincode_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register `medledger chaincode` and its subcommands."""
    subcommands = add_command_group(
        commands, "chaincode", summary="package, install, approve and commit chaincode"
    )

    package = subcommands.add_parser(
        "package",
        help="make an install package (.tar.gz) from a chaincode folder",
        description=(
            "Write Fabric's install package: metadata.json and code.tar.gz. Python: "
            "a folder with __init__.py is served as the module of its name unless "
            "--module says otherwise. ccaas: the folder holds connection.json."
        ),
    )
    package.add_argument("--label", required=True, help="package label, e.g. records_1")
    package.add_argument("--lang", required=True, choices=PACKAGE_TYPES)
    package.add_argument("--path", type=Path, required=True, help="chaincode folder")
    package.add_argument("--module", default="", help="python: module to serve")
    package.add_argument(
        "-o", "--output-file", type=Path, required=True, help="package file to write"
    )
    package.set_defaults(handler=run_package)

    install_parser = subcommands.add_parser(
        "install", help="install a package on a peer"
    )
    install_parser.add_argument("package_file", type=Path, help="the .tar.gz package")
    _peer_arguments(install_parser)
    install_parser.set_defaults(handler=run_install)

    installed = subcommands.add_parser("queryinstalled", help="packages on a peer")
    installed.add_argument("--package-id", default="", help="only this package")
    _peer_arguments(installed)
    _output_argument(installed)
    installed.set_defaults(handler=run_query_installed)

    fetch = subcommands.add_parser(
        "getinstalledpackage",
        help="fetch an installed package from a peer (admins only)",
        description=(
            "Write the package installed on the peer as <package-id>.tar.gz in the "
            "output directory and print the file's path."
        ),
    )
    fetch.add_argument("--package-id", required=True, help="the package to fetch")
    fetch.add_argument(
        "--output-directory",
        type=Path,
        default=Path(),
        help="where to write it (default: the current directory; created if missing)",
    )
    _peer_arguments(fetch)
    fetch.set_defaults(handler=run_get_installed_package)

    calculate = subcommands.add_parser(
        "calculatepackageid",
        help="the package id of a package file (no network)",
        description="Check that the file is an install package and print its id.",
    )
    calculate.add_argument("package_file", type=Path, help="the .tar.gz package")
    _output_argument(calculate)
    calculate.set_defaults(handler=run_calculate_package_id)

    approve_parser = subcommands.add_parser(
        "approve", help="approve a definition for your organisation"
    )
    _definition_arguments(approve_parser)
    approve_parser.add_argument(
        "--package-id", default="", help="the installed package your peers run"
    )
    _peer_arguments(approve_parser)
    _orderer_arguments(approve_parser)
    approve_parser.set_defaults(handler=run_approve)

    readiness = subcommands.add_parser(
        "checkcommitreadiness", help="which organisations approved a definition"
    )
    _definition_arguments(readiness)
    _peer_arguments(readiness)
    _output_argument(readiness)
    readiness.set_defaults(handler=run_check_commit_readiness)

    commit_parser = subcommands.add_parser(
        "commit", help="commit a definition (repeat --peer: one per organisation)"
    )
    _definition_arguments(commit_parser)
    _peer_arguments(commit_parser, many=True)
    _orderer_arguments(commit_parser)
    commit_parser.set_defaults(handler=run_commit)

    approved = subcommands.add_parser("queryapproved", help="your approved definition")
    _channel_argument(approved)
    approved.add_argument("-n", "--name", required=True, help="chaincode name")
    approved.add_argument("--sequence", type=int, default=0, help="0: the latest")
    _peer_arguments(approved)
    _output_argument(approved)
    approved.set_defaults(handler=run_query_approved)

    committed = subcommands.add_parser("querycommitted", help="committed definitions")
    _channel_argument(committed)
    committed.add_argument(
        "-n", "--name", default="", help="one chaincode (default: all)"
    )
    _peer_arguments(committed)
    _output_argument(committed)
    committed.set_defaults(handler=run_query_committed)


# Handlers


def run_package(args: argparse.Namespace) -> int:
    data, metadata = build_package(
        label=args.label, kind=args.lang, source=args.path, module=args.module
    )
    try:
        args.output_file.write_bytes(data)
    except OSError as error:
        raise ConfigError(f"{args.output_file}: {error.strerror}") from None
    print(f"Package ID: {package_id(metadata.label, data)}")
    return EXIT_OK


def run_install(args: argparse.Namespace) -> int:
    try:
        data = args.package_file.read_bytes()
    except OSError as error:
        raise ConfigError(f"{args.package_file}: {error.strerror}") from None
    result = _run(install(_peer(args), _signer(args), data))
    print(f"Chaincode code package identifier: {result.package_id}")
    return EXIT_OK


def run_query_installed(args: argparse.Namespace) -> int:
    result = _run(query_installed(_peer(args), _signer(args), args.package_id))
    if args.output == "json":
        return _print_json(result)
    print("Installed chaincodes on peer:")
    entries = (
        result.installed_chaincodes
        if isinstance(result, lb.QueryInstalledChaincodesResult)
        else [result]
    )
    for entry in entries:
        print(f"Package ID: {entry.package_id}, Label: {entry.label}")
    return EXIT_OK


def run_get_installed_package(args: argparse.Namespace) -> int:
    data = _run(get_installed_package(_peer(args), _signer(args), args.package_id))
    # The client checked that `data` is the package `args.package_id`, whose label
    # has no path separator: the file stays inside the output directory.
    path = args.output_directory / f"{args.package_id}.tar.gz"
    _write_atomically(path, data)
    print(path)
    return EXIT_OK


def run_calculate_package_id(args: argparse.Namespace) -> int:
    try:
        data = args.package_file.read_bytes()
    except OSError as error:
        raise ConfigError(f"{args.package_file}: {error.strerror}") from None
    try:
        package = parse_package(data)
    except InvalidPackage as error:
        reason = " ".join(str(error).split())
        raise ConfigError(
            f"{args.package_file}: not a chaincode install package: {reason}"
        ) from None
    if args.output == "json":
        print(json.dumps({"package_id": package.package_id}, indent=2))
    else:
        print(package.package_id)
    return EXIT_OK


def run_approve(args: argparse.Namespace) -> int:
    tx_id = _run(
        approve(
            _peer(args),
            _orderer(args),
            _signer(args),
            channel=args.channel,
            definition=_definition(args),
            package_id=args.package_id,
        )
    )
    print(f"txid [{tx_id}] committed with status (VALID)")
    return EXIT_OK


def run_check_commit_readiness(args: argparse.Namespace) -> int:
    approvals = _run(
        check_commit_readiness(
            _peer(args),
            _signer(args),
            channel=args.channel,
            definition=_definition(args),
        )
    )
    if args.output == "json":
        print(json.dumps({"approvals": approvals}, indent=2))
        return EXIT_OK
    print(
        f"Chaincode definition for chaincode '{args.name}', version '{args.version}', "
        f"sequence '{args.sequence}' on channel '{args.channel}' approval status by org:"
    )
    for mspid, approved in approvals.items():
        print(f"{mspid}: {str(approved).lower()}")
    return EXIT_OK


def run_commit(args: argparse.Namespace) -> int:
    peers = [_target(address, args) for address in args.peer]
    tx_id = _run(
        commit(
            peers,
            _orderer(args),
            _signer(args),
            channel=args.channel,
            definition=_definition(args),
        )
    )
    print(f"txid [{tx_id}] committed with status (VALID)")
    return EXIT_OK


def run_query_approved(args: argparse.Namespace) -> int:
    result = _run(
        query_approved(
            _peer(args),
            _signer(args),
            channel=args.channel,
            name=args.name,
            sequence=args.sequence,
        )
    )
    if args.output == "json":
        return _print_json(result)
    package = result.source.local_package.package_id or "(unavailable)"
    print(
        f"Approved chaincode definition for chaincode '{args.name}' on channel "
        f"'{args.channel}':\nsequence: {result.sequence}, version: {result.version}, "
        f"init-required: {str(result.init_required).lower()}, package-id: {package}, "
        f"endorsement plugin: {result.endorsement_plugin}, validation plugin: "
        f"{result.validation_plugin}"
    )
    return EXIT_OK


def run_query_committed(args: argparse.Namespace) -> int:
    result = _run(
        query_committed(
            _peer(args), _signer(args), channel=args.channel, name=args.name
        )
    )
    if args.output == "json":
        return _print_json(result)
    if isinstance(result, lb.QueryChaincodeDefinitionResult):
        approvals = ", ".join(
            f"{mspid}: {str(ok).lower()}"
            for mspid, ok in sorted(result.approvals.items())
        )
        print(
            f"Committed chaincode definition for chaincode '{args.name}' on channel "
            f"'{args.channel}':\n{_describe(result)}, Approvals: [{approvals}]"
        )
        return EXIT_OK
    print(f"Committed chaincode definitions on channel '{args.channel}':")
    for definition in result.chaincode_definitions:
        print(f"Name: {definition.name}, {_describe(definition)}")
    return EXIT_OK


def collections_from_json(text: str, *, source: str) -> bytes:
    """A marshaled CollectionConfigPackage from Fabric's collection config JSON.

    Raises:
        ConfigError: not a JSON list of collections, or a field of the wrong type.
    """
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{source}: not JSON: {error}") from None
    if not isinstance(document, list):
        raise ConfigError(f"{source}: expected a JSON list of collections")
    package = collection_pb2.CollectionConfigPackage()
    for index, item in enumerate(document):
        where = f"{source}: collection {index}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected an object")
        static = collection_pb2.StaticCollectionConfig(
            name=_field(item, "name", str, "", where),
            required_peer_count=_field(item, "requiredPeerCount", int, 0, where),
            maximum_peer_count=_field(item, "maxPeerCount", int, 0, where),
            block_to_live=_field(item, "blockToLive", int, 0, where),
            member_only_read=_field(item, "memberOnlyRead", bool, False, where),
            member_only_write=_field(item, "memberOnlyWrite", bool, False, where),
        )
        policy = _field(item, "policy", str, "", where)
        static.member_orgs_policy.signature_policy.CopyFrom(_signature(policy, where))
        endorsement = item.get("endorsementPolicy")
        if endorsement is not None:
            static.endorsement_policy.CopyFrom(_application_policy(endorsement, where))
        package.config.add(static_collection_config=static)
    return package.SerializeToString(deterministic=True)


# Arguments


def _peer_arguments(parser: argparse.ArgumentParser, *, many: bool = False) -> None:
    parser.add_argument(
        "--peer",
        required=True,
        action="append" if many else "store",
        help="the peer's HOST:PORT" + (" (repeatable)" if many else ""),
    )
    parser.add_argument(
        "--identity", type=Path, required=True, help="MSP folder of an admin"
    )
    parser.add_argument("--mspid", required=True, help="the admin's MSP id")
    parser.add_argument(
        "--tls-ca",
        type=Path,
        action="append",
        default=[],
        help="CA of the peers' TLS certificates (repeatable; TLS on when given)",
    )
    parser.add_argument("--tls-cert", type=Path, help="client certificate (mutual TLS)")
    parser.add_argument("--tls-key", type=Path, help="client key (mutual TLS)")
    parser.add_argument("--server-name", help="TLS name to expect from the peer")


def _orderer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--orderer", required=True, help="the orderer's HOST:PORT"
    )
    parser.add_argument("--orderer-tls-ca", type=Path, help="CA of its TLS certificate")
    parser.add_argument("--orderer-server-name", help="TLS name to expect from it")


def _channel_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-C", "--channel", "--channelID", required=True)


def _definition_arguments(parser: argparse.ArgumentParser) -> None:
    _channel_argument(parser)
    parser.add_argument("-n", "--name", required=True, help="chaincode name")
    parser.add_argument("-v", "--version", required=True, help="chaincode version")
    parser.add_argument("--sequence", type=int, required=True, help="1, then +1 each")
    policy = parser.add_mutually_exclusive_group()
    policy.add_argument(
        "--signature-policy", help="e.g. \"OR('AMSP.peer','BMSP.peer')\""
    )
    policy.add_argument(
        "--channel-config-policy", help="e.g. /Channel/Application/Endorsement"
    )
    parser.add_argument("--init-required", action="store_true")
    parser.add_argument(
        "--collections-config", type=Path, help="Fabric's collection config JSON"
    )
    parser.add_argument("-E", "--endorsement-plugin", default="")
    parser.add_argument("-V", "--validation-plugin", default="")


def _output_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-O", "--output", choices=("text", "json"), default="text")


# Helpers


def _definition(args: argparse.Namespace) -> Definition:
    policy = b""
    if args.signature_policy:
        policy = _application_policy(
            {"signaturePolicy": args.signature_policy}, "--signature-policy"
        ).SerializeToString(deterministic=True)
    elif args.channel_config_policy:
        policy = policy_pb2.ApplicationPolicy(
            channel_config_policy_reference=args.channel_config_policy
        ).SerializeToString(deterministic=True)
    collections = b""
    if args.collections_config is not None:
        try:
            text = args.collections_config.read_text()
        except OSError as error:
            raise ConfigError(f"{args.collections_config}: {error.strerror}") from None
        collections = collections_from_json(text, source=str(args.collections_config))
    return Definition(
        name=args.name,
        version=args.version,
        sequence=args.sequence,
        endorsement_policy=policy,
        init_required=args.init_required,
        collections=collections,
        endorsement_plugin=args.endorsement_plugin,
        validation_plugin=args.validation_plugin,
    )


def _signer(args: argparse.Namespace) -> SigningIdentity:
    return load_signing_identity(args.identity, mspid=args.mspid)


def _peer(args: argparse.Namespace) -> Target:
    return _target(args.peer, args)


def _target(address: str, args: argparse.Namespace) -> Target:
    if not args.tls_ca:
        return Target(address=address)
    tls = TlsFiles(cert=args.tls_cert, key=args.tls_key, root_cas=tuple(args.tls_ca))
    return Target(address=address, tls=tls, server_name=args.server_name)


def _orderer(args: argparse.Namespace) -> Target:
    if args.orderer_tls_ca is None:
        return Target(address=args.orderer)
    tls = TlsFiles(root_cas=(args.orderer_tls_ca,))
    return Target(address=args.orderer, tls=tls, server_name=args.orderer_server_name)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `path` through a temporary file, so no half-written package is left."""
    temporary = path.with_name(f".partial-{path.name}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(data)
        temporary.replace(path)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise ConfigError(f"{path}: {error.strerror}") from None


def _run(work: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(work)


def _print_json(message: Message) -> int:
    print(json_format.MessageToJson(message, preserving_proto_field_name=True))
    return EXIT_OK


def _describe(definition: Any) -> str:
    return (
        f"Version: {definition.version}, Sequence: {definition.sequence}, "
        f"Endorsement Plugin: {definition.endorsement_plugin}, "
        f"Validation Plugin: {definition.validation_plugin}"
    )


def _field(
    item: dict[str, Any], name: str, kind: type[_V], default: _V, where: str
) -> _V:
    value = item.get(name, default)
    # bool is an int in Python; a count given as true/false is still wrong.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: '{name}' must be a {kind.__name__}")
    return value


def _signature(policy: str, where: str) -> Any:
    try:
        return from_string(policy)
    except PolicyError as error:
        raise ConfigError(f"{where}: policy {policy!r}: {error}") from None


def _application_policy(document: object, where: str) -> policy_pb2.ApplicationPolicy:
    if not isinstance(document, dict) or len(document) != 1:
        raise ConfigError(
            f"{where}: endorsementPolicy needs one of signaturePolicy, "
            "channelConfigPolicy"
        )
    [(kind, value)] = document.items()
    if kind == "signaturePolicy" and isinstance(value, str):
        return policy_pb2.ApplicationPolicy(signature_policy=_signature(value, where))
    if kind == "channelConfigPolicy" and isinstance(value, str):
        return policy_pb2.ApplicationPolicy(channel_config_policy_reference=value)
    raise ConfigError(f"{where}: unknown endorsementPolicy {kind!r}")
