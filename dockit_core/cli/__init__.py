"""Stage 1, and the top of the pipeline: the command line.

- `main`: parses the options, then runs the tracer (live or attached) or reads a log, and writes the
  outputs; the only code that spawns processes and opens the outputs.
- `options`: the choices of one run, as plain data.
- `session`: wires one run: parser -> tracker (model, channels, decoders) -> writers.
"""

from dockit_core.cli.main import main

__all__ = ["main"]
