"""The layout is the architecture: these tests keep it so.

- The public surface a decoder plugin may import (docs/decoders.md) keeps every name it has had: a
  name may be added, never removed. The lists below are written by hand from the documentation, not
  read from the modules.
- The imports run in layers, as docs/architecture.md draws them: protocols know nothing of ours,
  decoders know protocols, the pipeline's stages import only the stages before them.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PUBLIC = {
    "decoders.api": {"ChannelInfo", "Chunk", "Decoder", "DecoderOptions", "Direction"},
    "decoders.records": {
        "Annotation",
        "AttrValue",
        "BrokerMessage",
        "BrokerOperation",
        "BrokerSession",
        "CimChild",
        "CimObject",
        "DatabaseSession",
        "HttpExchange",
        "Output",
        "Record",
        "Secret",
        "SqlQuery",
        "TlsSession",
        "as_cim",
        # typed records and problems (issue 16)
        "BYTES",
        "COUNT",
        "DURATION",
        "FLAG",
        "SECRET",
        "SEVERITIES",
        "TEXT",
        "TIME",
        "ChildType",
        "Duration",
        "FieldType",
        "Problem",
        "RecordType",
        "Time",
        "printable_bytes",
        # message brokers (issue 18)
        "MESSAGE_DELIVER",
        "MESSAGE_PUBLISH",
        "named_values",
        # a decimal number written exactly as given (examples/dockit-tag1's prices)
        "DECIMAL",
    },
    "decoders.framing": {"Frame", "LengthPrefixed", "LineReader", "TLV", "reading_since"},
    "decoders.testing": {
        "IN",
        "OUT",
        "Decoded",
        "Fixture",
        "assert_never_raises",
        "assert_same_records",
        "byte_by_byte",
        "channel",
        "chunk",
        "conversation",
        "cut",
        "decode",
        "from_hex",
        "garbage",
        "hexdump",
        "load_chunks",
        "merged",
        "random_splits",
        "replay",
        "reversed_directions",
        "save_chunks",
        "variants",
    },
    "decoders.redact": {
        "REDACTED",
        "SECRET_HEADERS",
        "is_secret_column",
        "is_secret_header",
        "redact_header",
        "redact_row",
        "redact_sql",
        "redact_url",
    },
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_names_are_kept(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = set(getattr(module, "__all__", ()))
    missing = PUBLIC[module_name] - exported
    assert not missing, f"{module_name} no longer exports {sorted(missing)}"
    for name in exported:
        assert hasattr(module, name), f"{module_name}.__all__ names {name}, which it does not define"


# Which top-level parts each part may import (itself included). The stages of dockit_core are
# dockit_core.cli, .ingest, .model and .outputs; `dockit_core` alone is its __init__ (the version).
# `decoders.testing` is a tool for decoder authors on top of everything: its `replay` drives the whole
# pipeline as the command line does, and no part of dockit imports it but the command line (`extract`).
ALLOWED = {
    "decoders.testing": {
        "dockit_core",
        "dockit_core.ingest",
        "dockit_core.model",
        "dockit_core.outputs",
        "dockit_core.cli",
        "decoders",
        "decoders.testing",
        "protocols",
    },
    "protocols": {"protocols"},
    "decoders": {"decoders", "protocols"},
    "dockit_core": {"dockit_core"},
    "dockit_core.ingest": {"dockit_core", "dockit_core.ingest"},
    "dockit_core.model": {"dockit_core", "dockit_core.ingest", "dockit_core.model", "decoders", "protocols"},
    "dockit_core.outputs": {
        "dockit_core",
        "dockit_core.ingest",
        "dockit_core.model",
        "dockit_core.outputs",
        "decoders",
        "protocols",
    },
    "dockit_core.cli": {
        "dockit_core",
        "dockit_core.ingest",
        "dockit_core.model",
        "dockit_core.outputs",
        "dockit_core.cli",
        "decoders",
        "decoders.testing",
        "protocols",
    },
}


def part_of(module: str) -> str | None:
    """The part of the layout a dotted module name belongs to (the longest prefix in ALLOWED)."""
    if module == "dockit_core.__main__":
        return "dockit_core.cli"  # `python -m dockit_core` is the command line
    parts = module.split(".")
    for length in (2, 1):
        prefix = ".".join(parts[:length])
        if prefix in ALLOWED and (length == 1 or parts[0] == "dockit_core" or prefix == "decoders.testing"):
            return prefix
    return None


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names if node.module == "dockit_core"]
    return names


def source_modules() -> list[tuple[str, Path]]:
    found = []
    for package in ("dockit_core", "decoders", "protocols"):
        for path in sorted((REPO / package).rglob("*.py")):
            dotted = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            found.append((dotted, path))
    return found


def test_imports_follow_the_layers() -> None:
    wrong = []
    for module, path in source_modules():
        own = part_of(module)
        assert own is not None, f"{module} is in no part of the layout"
        for name in imported_modules(path):
            target = part_of(name)
            if target is None or name == "dockit_core.__version__":
                continue  # the standard library or a third-party package
            if target not in ALLOWED[own]:
                wrong.append(f"{module} imports {name}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_stages_list_in_pipeline_order() -> None:
    """A folder listing reads as the pipeline: command line, trace in, model, outputs."""
    stages = sorted(p.name for p in (REPO / "dockit_core").iterdir() if (p / "__init__.py").exists())
    assert stages == ["cli", "ingest", "model", "outputs"]
