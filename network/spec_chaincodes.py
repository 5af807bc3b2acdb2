"""The ``chaincodes`` section of the consortium spec: what to deploy, where, under which rules.

    chaincodes:
      - name: asset                        # the chaincode's name on the channel
        path: ../../chaincode/contracts/asset   # its source folder, relative to this file
        language: python                   # python (our SDK) | node | ccaas
        module: chaincode.contracts.asset  # python/ccaas: what to serve (default: the
                                           # folder, a Python package, by its name)
        version: "1.0"                     # default "1.0"
        sequence: 1                        # default 1; raise it to upgrade the definition
        channels: [medical-records]        # default: every channel of the spec
        endorsement_policy: "OR('HospitalAMSP.peer', 'HospitalBMSP.peer')"
                                           # a signature policy, or a channel policy path
                                           # such as /Channel/Application/Endorsement (the
                                           # default)
        init_required: false              # true: `network up` sends the init transaction
        init_function: InitLedger          # what it calls (default InitLedger); only
        init_args: []                      # with init_required: true
        port: 9999                         # ccaas only: where its server listens
        host: 127.0.0.1                    # ccaas only (default 127.0.0.1)
        collections:
          - name: hospitalA-private
            policy: "OR('HospitalAMSP.member')"  # who holds the private data
            required_peer_count: 0         # default 0
            max_peer_count: 1              # default 1
            block_to_live: 0               # default 0 (never purged by age)
            member_only_read: true         # default true
            member_only_write: true        # default true
            endorsement_policy: "OR('HospitalAMSP.peer')"  # optional

`read_chaincodes` validates the section against the organisations and channels;
`collection_package` and `endorsement_policy_bytes` turn a chaincode into the bytes of
its `_lifecycle` definition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml

from common.config import ConfigNode, check_unique, optional_list
from common.errors import PolicyError
from common.policies import from_string
from common.policies.dsl import Gate, Principal, parse
from network.spec import ConsortiumSpec
from protos.peer import collection_pb2, policy_pb2

__all__ = [
    "DEFAULT_ENDORSEMENT_REFERENCE",
    "ChaincodeLanguage",
    "ChaincodeSpec",
    "CollectionSpec",
    "collection_package",
    "endorsement_policy_bytes",
    "python_module",
    "read_chaincodes",
]

DEFAULT_ENDORSEMENT_REFERENCE = "/Channel/Application/Endorsement"

_NAME = re.compile(r"[a-zA-Z0-9]+(?:[a-zA-Z0-9_-]*[a-zA-Z0-9])?")
_COLLECTION_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,126}[A-Za-z0-9])?")
_FUNCTION = re.compile(r"(?:[A-Za-z0-9_.-]+:)?[A-Za-z_][A-Za-z0-9_]*")
_VERSION = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?::\w+)?")
_POLICY_PATH = re.compile(r"/Channel/Application/[A-Za-z0-9_/-]+")
_INT32_MAX = 2**31 - 1
_UINT64_MAX = 2**64 - 1

_EXPECT_NAME = (
    "a chaincode name: letters, digits, '_' and '-', starting and ending with a "
    "letter or digit"
)
_EXPECT_LANGUAGE = "the language 'python', 'node' or 'ccaas'"
_EXPECT_POLICY = (
    "a signature policy such as \"OR('HospitalAMSP.peer')\" or a channel policy path "
    "such as /Channel/Application/Endorsement"
)


class ChaincodeLanguage(StrEnum):
    """How the chaincode runs: launched by each peer, or as a service peers dial."""

    PYTHON = "python"
    NODE = "node"
    CCAAS = "ccaas"


@dataclass(frozen=True)
class CollectionSpec:
    """A private data collection of a chaincode."""

    name: str
    policy: str
    required_peer_count: int = 0
    max_peer_count: int = 1
    block_to_live: int = 0
    member_only_read: bool = True
    member_only_write: bool = True
    endorsement_policy: str | None = None


@dataclass(frozen=True, kw_only=True)
class ChaincodeSpec:
    """One chaincode as the operator described it, defaults applied.

    `path` is absolute; `module` is what python and ccaas chaincode serve when the
    operator named it (None: the folder, a Python package, serves itself).
    """

    name: str
    path: Path
    language: ChaincodeLanguage
    channels: tuple[str, ...]
    version: str = "1.0"
    sequence: int = 1
    module: str | None = None
    endorsement_policy: str = DEFAULT_ENDORSEMENT_REFERENCE
    init_required: bool = False
    init_function: str = "InitLedger"
    """With `init_required`: the function the init transaction calls."""
    init_args: tuple[str, ...] = ()
    collections: tuple[CollectionSpec, ...] = ()
    host: str = "127.0.0.1"
    port: int | None = None

    @property
    def label(self) -> str:
        """The package label, Fabric's convention: ``<name>_<version>``."""
        return f"{self.name}_{self.version}"

    @property
    def address(self) -> str | None:
        """ccaas: where the chaincode server listens."""
        if self.port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def read_chaincodes(spec: ConsortiumSpec) -> tuple[ChaincodeSpec, ...]:
    """Read and check the ``chaincodes`` section (absent or null: none).

    Raises:
        ConfigError: naming the file, line and key path, and what was expected.
    """
    node = spec.reserved.get("chaincodes")
    if node is None or node.is_null:
        return ()
    items = node.as_list()
    base = spec.source.parent if spec.source is not None else Path.cwd()
    channels = tuple(channel.name for channel in spec.channels)
    mspids = frozenset(organization.mspid for organization in spec.organizations)
    chaincodes = tuple(_read_chaincode(item, base, channels, mspids) for item in items)
    check_unique(
        (
            (item.child("name"), chaincode.name)
            for item, chaincode in zip(items, chaincodes, strict=True)
        ),
        what="chaincode name",
    )
    return chaincodes


def endorsement_policy_bytes(policy: str) -> bytes:
    """The marshaled `ApplicationPolicy` of a policy string or a channel policy path."""
    if policy.startswith("/"):
        message = policy_pb2.ApplicationPolicy(channel_config_policy_reference=policy)
    else:
        message = policy_pb2.ApplicationPolicy(signature_policy=from_string(policy))
    return message.SerializeToString(deterministic=True)


def collection_package(collections: tuple[CollectionSpec, ...]) -> bytes:
    """The marshaled `CollectionConfigPackage` (empty bytes when there are none)."""
    if not collections:
        return b""
    package = collection_pb2.CollectionConfigPackage()
    for collection in collections:
        static = collection_pb2.StaticCollectionConfig(
            name=collection.name,
            member_orgs_policy=collection_pb2.CollectionPolicyConfig(
                signature_policy=from_string(collection.policy)
            ),
            required_peer_count=collection.required_peer_count,
            maximum_peer_count=collection.max_peer_count,
            block_to_live=collection.block_to_live,
            member_only_read=collection.member_only_read,
            member_only_write=collection.member_only_write,
        )
        if collection.endorsement_policy is not None:
            static.endorsement_policy.signature_policy.CopyFrom(
                from_string(collection.endorsement_policy)
            )
        package.config.add(static_collection_config=static)
    return package.SerializeToString(deterministic=True)


def _read_chaincode(
    node: ConfigNode,
    base: Path,
    channels: tuple[str, ...],
    mspids: frozenset[str],
) -> ChaincodeSpec:
    fields = node.as_mapping(
        required=("name", "path"),
        optional=(
            "language",
            "module",
            "version",
            "sequence",
            "channels",
            "endorsement_policy",
            "init_required",
            "init_function",
            "init_args",
            "collections",
            "host",
            "port",
        ),
    )
    name = fields["name"].as_str(pattern=_NAME, expected=_EXPECT_NAME)
    language = _read_language(fields.get("language"))
    path = _read_path(fields["path"], base)
    policy_node = fields.get("endorsement_policy")
    init_required = _read_bool(fields.get("init_required"), default=False)
    init_function, init_args = _read_init(fields, init_required)
    collections = optional_list(
        fields, "collections", lambda item: _read_collection(item, mspids)
    )
    check_unique(
        (
            (item.child("name"), collection.name)
            for item, collection in zip(
                _items(fields, "collections"), collections, strict=True
            )
        ),
        what="collection name",
    )
    return ChaincodeSpec(
        name=name,
        path=path,
        language=language,
        channels=_read_channels(fields.get("channels"), channels, node),
        version=_read_version(fields.get("version")),
        sequence=_read_sequence(fields.get("sequence")),
        module=_read_module(fields.get("module"), language, path, node),
        endorsement_policy=(
            _read_policy(policy_node, mspids, paths=True)
            if policy_node is not None
            else DEFAULT_ENDORSEMENT_REFERENCE
        ),
        init_required=init_required,
        init_function=init_function,
        init_args=init_args,
        collections=collections,
        host=_read_host(fields.get("host"), language),
        port=_read_port(fields.get("port"), language, node),
    )


def _read_init(
    fields: dict[str, ConfigNode], init_required: bool
) -> tuple[str, tuple[str, ...]]:
    """The init transaction's function and arguments (only with init_required)."""
    function_node = fields.get("init_function")
    args_node = fields.get("init_args")
    if not init_required:
        for node in (function_node, args_node):
            if node is not None:
                raise node.error(
                    "init_function and init_args apply only with init_required: true"
                )
    function = (
        "InitLedger"
        if function_node is None
        else function_node.as_str(
            pattern=_FUNCTION, expected="a transaction function name such as InitLedger"
        )
    )
    if args_node is None or args_node.is_null:
        return function, ()
    args = tuple(
        item.as_str(expected="a text argument (quote numbers)")
        for item in args_node.as_list()
    )
    return function, args


def _read_language(node: ConfigNode | None) -> ChaincodeLanguage:
    if node is None:
        return ChaincodeLanguage.PYTHON
    try:
        return ChaincodeLanguage(node.as_str(expected=_EXPECT_LANGUAGE))
    except ValueError:
        raise node.expected(_EXPECT_LANGUAGE) from None


def _read_path(node: ConfigNode, base: Path) -> Path:
    text = node.as_str(expected="the chaincode's source folder")
    path = Path(text)
    resolved = (path if path.is_absolute() else base / path).resolve()
    if not resolved.is_dir():
        raise node.error(
            f"no folder {resolved}; expected the chaincode's source folder"
        )
    return resolved


def _read_channels(
    node: ConfigNode | None, known: tuple[str, ...], chaincode: ConfigNode
) -> tuple[str, ...]:
    if not known:
        raise chaincode.error(
            "the spec has no channels, and a chaincode is deployed on a channel"
        )
    if node is None or node.is_null:
        return known
    items = node.as_list()
    if not items:
        raise node.error("expected at least one channel name")
    names = []
    for item in items:
        name = item.as_str(expected="a channel name of this spec")
        if name not in known:
            raise item.error(
                f"no channel {name!r} in this spec (channels: {', '.join(known) or 'none'})"
            )
        names.append(name)
    check_unique(zip(items, names, strict=True), what="channel")
    return tuple(names)


def _read_version(node: ConfigNode | None) -> str:
    if node is None:
        return "1.0"
    # A bare 1.0 is a number to YAML; the version is the text as written.
    text = str(node.node.value) if isinstance(node.node, yaml.ScalarNode) else ""
    if node.is_null or not _VERSION.fullmatch(text):
        raise node.expected("a version of letters, digits, '.', '_', '+' and '-'")
    return text


def _read_sequence(node: ConfigNode | None) -> int:
    if node is None:
        return 1
    return node.as_int(minimum=1, maximum=2**63 - 1)


def _read_module(
    node: ConfigNode | None, language: ChaincodeLanguage, path: Path, at: ConfigNode
) -> str | None:
    if language is ChaincodeLanguage.NODE:
        if node is not None:
            raise node.error("'module' applies to python and ccaas chaincode only")
        return None
    if node is not None:
        return node.as_str(
            pattern=_MODULE, expected="a module path such as 'mypackage.contracts'"
        )
    if not (path / "__init__.py").is_file():
        raise at.error(
            f"missing key 'module': {path} is not a Python package (no __init__.py), "
            "so say which module to serve"
        )
    return None


def python_module(path: Path) -> str:
    """The dotted module name of a folder, counting the packages above it.

    ``.../chaincode/contracts/asset`` inside packages ``chaincode`` and ``contracts``
    is ``chaincode.contracts.asset``; a folder outside any package is its own name.
    """
    parts = [path.name]
    parent = path.parent
    while (parent / "__init__.py").is_file() and parent != parent.parent:
        parts.insert(0, parent.name)
        parent = parent.parent
    return ".".join(parts)


def _read_policy(node: ConfigNode, mspids: frozenset[str], *, paths: bool) -> str:
    text = node.as_str(expected=_EXPECT_POLICY)
    if text.startswith("/"):
        if not paths or not _POLICY_PATH.fullmatch(text):
            raise node.expected(
                _EXPECT_POLICY
                if paths
                else "a signature policy such as \"OR('HospitalAMSP.member')\""
            )
        return text
    try:
        gate = parse(text)
    except PolicyError as error:
        raise node.error(f"not a valid policy: {error}") from None
    unknown = sorted(_mspids_of(gate) - mspids)
    if unknown:
        raise node.error(
            f"the policy names MSP id {unknown[0]!r}, which no organisation of the "
            f"consortium has (known: {', '.join(sorted(mspids))})"
        )
    return text


def _mspids_of(rule: Gate | Principal) -> set[str]:
    if isinstance(rule, Principal):
        return {rule.mspid}
    found: set[str] = set()
    for sub in rule.rules:
        found |= _mspids_of(sub)
    return found


def _read_collection(node: ConfigNode, mspids: frozenset[str]) -> CollectionSpec:
    fields = node.as_mapping(
        required=("name", "policy"),
        optional=(
            "required_peer_count",
            "max_peer_count",
            "block_to_live",
            "member_only_read",
            "member_only_write",
            "endorsement_policy",
        ),
    )
    name = fields["name"].as_str(
        pattern=_COLLECTION_NAME,
        expected="a collection name of letters, digits, '_', '.' and '-'",
    )
    required = _read_int(fields.get("required_peer_count"), 0, _INT32_MAX)
    maximum = _read_int(fields.get("max_peer_count"), 1, _INT32_MAX)
    if maximum < required:
        where = fields.get("max_peer_count") or fields["required_peer_count"]
        raise where.error(
            f"max_peer_count ({maximum}) must not be below required_peer_count "
            f"({required})"
        )
    endorsement_node = fields.get("endorsement_policy")
    return CollectionSpec(
        name=name,
        policy=_read_policy(fields["policy"], mspids, paths=False),
        required_peer_count=required,
        max_peer_count=maximum,
        block_to_live=_read_int(fields.get("block_to_live"), 0, _UINT64_MAX),
        member_only_read=_read_bool(fields.get("member_only_read"), default=True),
        member_only_write=_read_bool(fields.get("member_only_write"), default=True),
        endorsement_policy=(
            _read_policy(endorsement_node, mspids, paths=False)
            if endorsement_node is not None
            else None
        ),
    )


def _read_host(node: ConfigNode | None, language: ChaincodeLanguage) -> str:
    if node is None:
        return "127.0.0.1"
    if language is not ChaincodeLanguage.CCAAS:
        raise node.error("'host' applies to ccaas chaincode only")
    return node.as_str(expected="a host name or IP address")


def _read_port(
    node: ConfigNode | None, language: ChaincodeLanguage, chaincode: ConfigNode
) -> int | None:
    if language is not ChaincodeLanguage.CCAAS:
        if node is not None:
            raise node.error("'port' applies to ccaas chaincode only")
        return None
    if node is None:
        raise chaincode.error(
            "missing key 'port' (a ccaas chaincode listens on it and peers dial it)"
        )
    return node.as_int(minimum=1, maximum=65535)


def _read_int(node: ConfigNode | None, default: int, maximum: int) -> int:
    return default if node is None else node.as_int(minimum=0, maximum=maximum)


def _read_bool(node: ConfigNode | None, *, default: bool) -> bool:
    return default if node is None else node.as_bool()


def _items(fields: dict[str, ConfigNode], key: str) -> list[ConfigNode]:
    node = fields.get(key)
    return [] if node is None or node.is_null else node.as_list()
