"""Stage 2 of the pipeline: the trace comes in. Lines in, events out.

- `tracers`: the strace and ltrace command lines dockit runs, and the FIFO they write into.
- `strace_parser`: one log line (strace or ltrace, any of their formats) into a `Call`, `Exit`,
  `Signal` or `Attach` event (`events`); `accelerator` loads `_linesplit`, the same for the common
  line in C, optional (built when a compiler is there; `DOCKIT_PURE_PYTHON=1` refuses it).
- `args`, `cstring`, `decorations`, `ltrace_buffers`: reading a call's arguments: splitting them, C
  string literals, `-y` fd decorations, the buffers ltrace prints.
"""
