"""`--proto FILE`: the protobuf schema that names the fields of gRPC messages, read before the run.

FILE is a `.proto` (compiled here by grpcio-tools' protoc, with the folder it is in as the import path)
or a descriptor set (`protoc -o FILE --include_imports x.proto`). Decoders get the descriptor set's
bytes (`DecoderOptions.proto`): they read no file."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from dockit_core.cli.arguments import UsageError

MAX_SIZE = 64 << 20


def load_proto(path: str) -> bytes:
    """The FileDescriptorSet of `path`, or a UsageError saying in one line why there is none."""
    if path.endswith(".proto"):
        return _compile(path)
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_SIZE + 1)
    except OSError as error:
        raise UsageError(f"--proto {path}: {error.strerror or error}") from error
    from protocols.protobuf import Schema

    if len(data) > MAX_SIZE or not Schema().add_file_set(data):
        raise UsageError(
            f"--proto {path}: neither a .proto file nor a descriptor set (protoc -o FILE --include_imports)"
        )
    return data


def _compile(path: str) -> bytes:
    if not os.path.isfile(path):
        raise UsageError(f"--proto {path}: no such file")
    try:
        import grpc_tools  # noqa: F401 - only to say clearly that it is missing
    except ImportError as error:
        raise UsageError(
            f"--proto {path}: compiling a .proto needs grpcio-tools (pip install grpcio-tools); "
            "or give a descriptor set made by protoc -o FILE --include_imports"
        ) from error
    with tempfile.TemporaryDirectory(prefix="dockit-proto-") as folder:
        out = os.path.join(folder, "set.desc")
        folder_of = os.path.dirname(os.path.abspath(path))
        done = subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", f"-I{folder_of}", f"--descriptor_set_out={out}",
             "--include_imports", os.path.abspath(path)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0 or not os.path.exists(out):
            first = (done.stderr or done.stdout).strip().splitlines()
            raise UsageError(f"--proto {path}: protoc failed: {first[0] if first else 'no output'}")
        with open(out, "rb") as stream:
            return stream.read()
