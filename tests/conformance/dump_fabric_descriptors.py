"""Write every file descriptor of the official `fabric_protos` package to one file.

The conformance test runs this as a child process: the official modules register
the same symbol names (`common.Envelope`, ...) as ours, so both sets cannot be
loaded into one process. Usage: `python dump_fabric_descriptors.py OUT_PATH`; the
output is a serialized `google.protobuf.FileDescriptorSet`.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: dump_fabric_descriptors.py OUT_PATH", file=sys.stderr)
        return 2
    Path(argv[1]).write_bytes(collect_descriptors().SerializeToString())
    return 0


def collect_descriptors() -> descriptor_pb2.FileDescriptorSet:
    """One FileDescriptorProto per `fabric_protos` `_pb2` module, sorted by name."""
    import fabric_protos

    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    prefix = fabric_protos.__name__ + "."
    for module_info in pkgutil.walk_packages(fabric_protos.__path__, prefix):
        if not module_info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(module_info.name)
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        files[proto.name] = proto
    return descriptor_pb2.FileDescriptorSet(
        file=[files[name] for name in sorted(files)]
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
