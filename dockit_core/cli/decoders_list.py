"""`dockit decoders`: which protocol decoders this dockit would use, where each comes from, and why any
installed plugin could not be loaded. What a team checks after `pip install`-ing its plugin."""

from __future__ import annotations

import argparse
import sys

from dockit_core import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockit decoders",
        description="List the protocol decoders dockit finds: built-in, installed plugins (the "
        "dockit.decoders entry points) and --decoder classes; then the plugins that failed to load, "
        "and why. Exit status 1 when one failed.",
    )
    parser.add_argument(
        "--decoder",
        action="append",
        default=[],
        metavar="MODULE:CLASS",
        help="also load this class, as a run given --decoder would",
    )
    return parser


def origin_text(origin) -> str:  # type: ignore[no-untyped-def]
    if origin.kind == "built-in":
        return f"built-in (dockit {__version__})"
    if origin.kind == "plugin":
        package = origin.distribution or "?"
        version = f" {origin.version}" if origin.version else ""
        return f"plugin {package}{version}"
    return "--decoder"


def main(args: list[str]) -> int:
    from decoders.registry import DecoderLoadError, Registry
    from dockit_core.cli.extract import table

    options = build_parser().parse_args(args)
    try:
        registry = Registry.default(options.decoder)
    except DecoderLoadError as error:
        sys.stderr.write(f"dockit: {error}\n")
        return 2
    rows = [("NAME", "PORTS", "FROM", "CLASS")]
    for cls in registry.classes:
        origin = registry.origins.get(cls)
        ports = ",".join(str(p) for p in sorted(cls.ports)) or "-"
        rows.append(
            (cls.name, ports, origin_text(origin) if origin else "?", origin.reference if origin else "?")
        )
    out = sys.stdout
    out.write(table(rows))
    failures = registry.failures
    if failures:
        out.write("\nnot loaded:\n")
        for failure in failures:
            origin = failure.origin
            where = origin_text(origin)
            name = origin.entry_point or origin.reference
            out.write(f"  {name} ({origin.reference}, {where}): {failure.reason}\n")
    return 1 if failures else 0
