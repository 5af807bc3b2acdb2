"""Conformance of our Fabric-compatible `.proto` files with the official ones.

The official descriptors are dumped by a child process (`dump_fabric_descriptors.py`),
because both sets register the same symbol names and cannot share one process. Every
message, enum and service in a file that both sides define is compared member by
member: field numbers and shapes, enum values, and rpc signatures.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest
from google.protobuf import descriptor_pb2

import protos
from tests.conftest import skip_or_fail

FileProto = descriptor_pb2.FileDescriptorProto
FieldProto = descriptor_pb2.FieldDescriptorProto

DUMP_SCRIPT = Path(__file__).with_name("dump_fabric_descriptors.py")
OUR_PREFIX = "protos/"

# Definitions that exist in the official package but not in ours. Only additions made
# after Fabric 2.5 belong here; each entry says why it is left out.
DELIBERATELY_OMITTED: frozenset[str] = frozenset()

# Official files we do not implement at all (none of their types are compared).
NOT_IMPLEMENTED_FILES: frozenset[str] = frozenset(
    {
        "common/collection.proto",  # legacy duplicate of peer/collection.proto
        "discovery/protocol.proto",  # service discovery: not offered
        "gossip/message.proto",  # peer-to-peer gossip: not used between our peers
        "orderer/cluster.proto",  # Fabric's orderer-to-orderer transport
        "orderer/clusterserver.proto",  # likewise (3.x cluster service)
        "orderer/smartbft/configuration.proto",  # SmartBFT consensus: Fabric 3.x
    }
)


class FieldShape(NamedTuple):
    """Everything about a field that matters on the wire and in generated code."""

    name: str
    type: str
    label: str
    type_name: str
    oneof: str
    is_map: bool


class MethodShape(NamedTuple):
    """The signature of one rpc."""

    input_type: str
    output_type: str
    client_streaming: bool
    server_streaming: bool


@dataclass(frozen=True, slots=True)
class Definition:
    """A message, enum or service, with its members rendered for comparison."""

    kind: str
    file: str
    members: Mapping[str, str]


# ------------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def official_files(tmp_path_factory: pytest.TempPathFactory) -> list[FileProto]:
    if importlib.util.find_spec("fabric_protos") is None:
        skip_or_fail(
            "the official `fabric_protos` package is not installed "
            "(pip install -e '.[test]' installs hyperledger-fabric-protos)"
        )
    out = tmp_path_factory.mktemp("fabric") / "descriptors.pb"
    subprocess.run([sys.executable, str(DUMP_SCRIPT), str(out)], check=True, timeout=60)
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return list(descriptor_set.file)


@pytest.fixture(scope="module")
def our_files() -> list[FileProto]:
    return load_our_files()


def test_definitions_match_fabric(
    official_files: list[FileProto], our_files: list[FileProto]
) -> None:
    """Every definition in a shared file matches Fabric, field by field."""
    mismatches = compare_definitions(
        official=official_files, ours=our_files, omitted=DELIBERATELY_OMITTED
    )
    if mismatches:
        pytest.fail(
            f"{len(mismatches)} mismatches against fabric_protos:\n"
            + "\n".join(f"- {line}" for line in mismatches)
        )


def test_every_official_file_is_implemented_or_listed(
    official_files: list[FileProto], our_files: list[FileProto]
) -> None:
    """The files we leave out are exactly the ones listed in NOT_IMPLEMENTED_FILES."""
    official = {file.name for file in official_files}
    ours = {our_name(file) for file in our_files}
    assert sorted(official - ours) == sorted(NOT_IMPLEMENTED_FILES)


def test_identical_sets_have_no_mismatches(our_files: list[FileProto]) -> None:
    """Comparing our descriptors with an untouched copy of themselves finds nothing."""
    assert compare_definitions(official=our_files, ours=copy_files(our_files)) == []


def _renumber_envelope_signature(files: list[FileProto]) -> None:
    field_of(files, "common.Envelope", "signature").number = 3


def _rename_status_success(files: list[FileProto]) -> None:
    enum = find_definition(files, "common.Status")
    assert isinstance(enum, descriptor_pb2.EnumDescriptorProto)
    next(value for value in enum.value if value.number == 200).name = "OK"


def _make_broadcast_unary(files: list[FileProto]) -> None:
    service = find_definition(files, "orderer.AtomicBroadcast")
    assert isinstance(service, descriptor_pb2.ServiceDescriptorProto)
    service.method[0].client_streaming = False


def _drop_block_header(files: list[FileProto]) -> None:
    file = next(f for f in files if f.name == "protos/common/common.proto")
    keep = [m for m in file.message_type if m.name != "BlockHeader"]
    del file.message_type[:]
    file.message_type.extend(keep)


def _leave_oneof(files: list[FileProto]) -> None:
    field_of(files, "orderer.SeekPosition", "oldest").ClearField("oneof_index")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            _renumber_envelope_signature, "common.Envelope field 2", id="number"
        ),
        pytest.param(_rename_status_success, "common.Status value 200", id="enum"),
        pytest.param(_make_broadcast_unary, "rpc Broadcast", id="streaming"),
        pytest.param(
            _drop_block_header, "missing message common.BlockHeader", id="gone"
        ),
        pytest.param(_leave_oneof, "orderer.SeekPosition field 2", id="oneof"),
    ],
)
def test_comparison_catches_a_changed_definition(
    our_files: list[FileProto],
    mutate: Callable[[list[FileProto]], None],
    expected: str,
) -> None:
    """One change to a copy of our descriptors shows up as a mismatch naming it."""
    changed = copy_files(our_files)
    mutate(changed)
    mismatches = compare_definitions(official=our_files, ours=changed)
    assert any(expected in line for line in mismatches), mismatches


def test_omitted_definitions_are_not_reported_missing(
    our_files: list[FileProto],
) -> None:
    """A definition absent from ours but listed as omitted is not a mismatch."""
    changed = copy_files(our_files)
    _drop_block_header(changed)
    omitted = frozenset({"common.BlockHeader"})
    assert compare_definitions(official=our_files, ours=changed, omitted=omitted) == []


# ------------------------------------------------------------------------ comparison


def compare_definitions(
    *,
    official: Sequence[FileProto],
    ours: Sequence[FileProto],
    omitted: frozenset[str] = frozenset(),
) -> list[str]:
    """Every difference between the two sets, over the files both of them define.

    Files are matched by name, ignoring our `protos/` prefix. Files that only one side
    has (for example our own protocol files) are not compared here.
    """
    theirs_by_name = {our_name(file): file for file in official}
    ours_by_name = {our_name(file): file for file in ours}
    shared = sorted(theirs_by_name.keys() & ours_by_name.keys())
    theirs = collect_definitions([theirs_by_name[name] for name in shared])
    mine = collect_definitions([ours_by_name[name] for name in shared])
    mismatches = [
        f"omitted name is not in Fabric: {name}"
        for name in sorted(omitted - theirs.keys())
    ]
    for name in sorted(theirs.keys() | mine.keys()):
        mismatches.extend(compare_one(name, theirs.get(name), mine.get(name), omitted))
    return mismatches


def compare_one(
    name: str,
    theirs: Definition | None,
    mine: Definition | None,
    omitted: frozenset[str],
) -> list[str]:
    if theirs is None:
        assert mine is not None
        return [f"extra {mine.kind} {name} in {mine.file}: not in Fabric"]
    if mine is None:
        if name in omitted:
            return []
        return [f"missing {theirs.kind} {name} (Fabric's {theirs.file})"]
    if name in omitted:
        return [f"{name} is listed in DELIBERATELY_OMITTED but is defined"]
    if (theirs.kind, theirs.file) != (mine.kind, mine.file):
        return [
            f"{name}: ours is a {mine.kind} in {mine.file}, "
            f"Fabric's a {theirs.kind} in {theirs.file}"
        ]
    mismatches = []
    for key in sorted(theirs.members.keys() | mine.members.keys(), key=member_order):
        want, got = theirs.members.get(key, "absent"), mine.members.get(key, "absent")
        if want != got:
            mismatches.append(f"{name} {key}: ours {got}, Fabric {want}")
    return mismatches


def collect_definitions(files: Sequence[FileProto]) -> dict[str, Definition]:
    """Messages (nested included), enums and services of the files, by full name."""
    map_entries = {
        name
        for file in files
        for name, message in walk_messages(file.package, file.message_type)
        if message.options.map_entry
    }
    definitions: dict[str, Definition] = {}
    for file in files:
        name_of_file = our_name(file)
        for name, message in walk_messages(file.package, file.message_type):
            definitions[name] = Definition(
                "message", name_of_file, message_members(message, map_entries)
            )
            for enum in message.enum_type:
                definitions[f"{name}.{enum.name}"] = Definition(
                    "enum", name_of_file, enum_members(enum)
                )
        for enum in file.enum_type:
            definitions[qualify(file.package, enum.name)] = Definition(
                "enum", name_of_file, enum_members(enum)
            )
        for service in file.service:
            definitions[qualify(file.package, service.name)] = Definition(
                "service", name_of_file, service_members(service)
            )
    return definitions


def walk_messages(
    scope: str, messages: Sequence[descriptor_pb2.DescriptorProto]
) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto]]:
    for message in messages:
        name = qualify(scope, message.name)
        yield name, message
        yield from walk_messages(name, message.nested_type)


def message_members(
    message: descriptor_pb2.DescriptorProto, map_entries: set[str]
) -> dict[str, str]:
    members = {}
    for field in message.field:
        oneof = (
            message.oneof_decl[field.oneof_index].name
            if field.HasField("oneof_index")
            else ""
        )
        shape = FieldShape(
            name=field.name,
            type=FieldProto.Type.Name(field.type).removeprefix("TYPE_").lower(),
            label=FieldProto.Label.Name(field.label).removeprefix("LABEL_").lower(),
            type_name=field.type_name,
            oneof=oneof,
            is_map=field.type_name.removeprefix(".") in map_entries,
        )
        members[f"field {field.number}"] = str(shape)
    return members


def enum_members(enum: descriptor_pb2.EnumDescriptorProto) -> dict[str, str]:
    names: dict[int, list[str]] = {}
    for value in enum.value:
        names.setdefault(value.number, []).append(value.name)
    return {
        f"value {number}": " = ".join(sorted(found)) for number, found in names.items()
    }


def service_members(service: descriptor_pb2.ServiceDescriptorProto) -> dict[str, str]:
    return {
        f"rpc {method.name}": str(
            MethodShape(
                input_type=method.input_type,
                output_type=method.output_type,
                client_streaming=method.client_streaming,
                server_streaming=method.server_streaming,
            )
        )
        for method in service.method
    }


def member_order(key: str) -> tuple[str, int, str]:
    """Sort fields and values numerically, rpcs by name."""
    kind, _, rest = key.partition(" ")
    return (kind, int(rest), "") if rest.lstrip("-").isdigit() else (kind, 0, rest)


# ------------------------------------------------------------------------ helpers


def load_our_files() -> list[FileProto]:
    """The FileDescriptorProto of every generated `*_pb2` module under protos/."""
    root = Path(protos.__file__).parent
    files = []
    for path in sorted(root.rglob("*_pb2.py")):
        module_name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        module = importlib.import_module(module_name)
        proto = FileProto()
        module.DESCRIPTOR.CopyToProto(proto)
        files.append(proto)
    return files


def our_name(file: FileProto) -> str:
    return file.name.removeprefix(OUR_PREFIX)


def qualify(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name


def copy_files(files: Sequence[FileProto]) -> list[FileProto]:
    copies = []
    for file in files:
        copy = FileProto()
        copy.CopyFrom(file)
        copies.append(copy)
    return copies


def find_definition(
    files: Sequence[FileProto], full_name: str
) -> (
    descriptor_pb2.DescriptorProto
    | descriptor_pb2.EnumDescriptorProto
    | descriptor_pb2.ServiceDescriptorProto
):
    for file in files:
        for name, message in walk_messages(file.package, file.message_type):
            if name == full_name:
                return message
        for enum in file.enum_type:
            if qualify(file.package, enum.name) == full_name:
                return enum
        for service in file.service:
            if qualify(file.package, service.name) == full_name:
                return service
    raise LookupError(full_name)


def field_of(
    files: Sequence[FileProto], message_name: str, field_name: str
) -> FieldProto:
    message = find_definition(files, message_name)
    assert isinstance(message, descriptor_pb2.DescriptorProto)
    return next(field for field in message.field if field.name == field_name)
