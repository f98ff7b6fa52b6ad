"""What the user asked for on the command line, and where the outputs go: light on imports, so that
the command line can check them and start the tracer before the pipeline's modules are loaded."""

from __future__ import annotations

from dataclasses import dataclass, field

from dockit_core.ingest.lines import DEFAULT_MAX_LINE
from dockit_core.outputs.summary.filter import SummaryFilter

CALLS_EXTENSIONS = {"TXT": ".txt", "CSV": ".csv", "JSON": ".json"}
# The summary's: `P.json` is the calls file's (-f JSON), so the JSON summary is `P.summary.json`
SUMMARY_EXTENSIONS = {
    "XML": ".xml",
    "TXT": ".summary.txt",
    "JSON": ".summary.json",
    "JSONL": ".summary.jsonl",
}


@dataclass
class Options:
    calls_format: str = "TXT"
    summary_format: str = "XML"  # XML, TXT, JSON, or JSONL (-F JSON --stream)
    filters: list[SummaryFilter] = field(default_factory=list)
    decode: bool = True
    digest: bool = True  # the query digest in the summary (--no-digest: off)
    decoder_references: list[str] = field(default_factory=list)
    decode_overrides: dict[int, str] = field(default_factory=dict)
    rows: int = 0  # rows of each SQL result set kept in the summary (--rows)
    proto: tuple[bytes, ...] = ()  # --proto: protobuf descriptor sets, for gRPC messages' fields
    warnings: int = 0
    verbose: int = 0
    dockerfile: bool = False
    copy_from_host: bool = False  # -D on a replay: this machine's files are the traced one's (--copy-from-host)
    write_calls: bool = True
    each_call: bool = False  # the calls file with one record per call instead of blocks
    decoder_timeout: float = 10.0  # seconds a decoder may spend on one chunk before it is stopped
    pcap: str | None = None  # --pcap FILE: every channel's bytes as pcapng
    events: str | None = None  # --events FILE: OCEL 2.0 JSON, or CSV when FILE ends in .csv
    case: str = "process"  # --case: the case id of the events CSV
    max_line: int = DEFAULT_MAX_LINE  # characters of one trace line held at most (--max-line)


@dataclass
class OutputPaths:
    prefix: str
    calls_format: str = "TXT"
    summary_format: str = "XML"

    @property
    def summary(self) -> str:
        return self.prefix + SUMMARY_EXTENSIONS[self.summary_format]

    @property
    def calls(self) -> str:
        return self.prefix + CALLS_EXTENSIONS[self.calls_format]

    @property
    def log(self) -> str:
        return self.prefix + ".log"

    @property
    def ini(self) -> str:
        return self.prefix + ".ini"

    @property
    def docker_dir(self) -> str:
        return self.prefix + ".docker"
