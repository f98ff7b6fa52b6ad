"""Stage 3 of the pipeline: the state of a traced run, and what changes it.

- `nodes`, `fds`, `processes`, `state`: what the trace says exists (files, sockets, pipes, fd tables,
  processes, and the `Model` that holds them). State only.
- `tracker/`: applies each event to that state, one module per kind of call.
- `channels`: groups a socket's or a pipe pair's bytes into conversations and feeds them to the
  protocol decoders (the `decoders` package), collecting what they return.
- `categories`: what kind of file a path is (shared library, config, temporary...).
"""

from dockit_core.model.fds import FdEntry, FdTable, SocketRefs
from dockit_core.model.nodes import FileAccess, FileNode, Node, PipeNode, SocketNode
from dockit_core.model.processes import Process
from dockit_core.model.state import Model

__all__ = [
    "FdEntry",
    "FdTable",
    "FileAccess",
    "FileNode",
    "Model",
    "Node",
    "PipeNode",
    "Process",
    "SocketNode",
    "SocketRefs",
]
