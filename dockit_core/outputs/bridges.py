"""The outputs that bridge to other tools (`--pcap` for Wireshark, `--events` for process mining),
opened for one run: each watches the channels' chunks, the calls and the exits as they come, and is
committed (renamed into place) or discarded with the run's other outputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from dockit_core.model.channels import ChannelManager
from dockit_core.model.state import Model
from dockit_core.outputs.redaction import redact_argv

if TYPE_CHECKING:
    from dockit_core.outputs.summary.objects import RunContext


class Bridge(Protocol):
    def commit(self) -> str: ...

    def discard(self) -> None: ...


def open_bridges(
    pcap_path: str | None,
    events_path: str | None,
    case: str,
    context: RunContext,
    model: Model,
    channels: ChannelManager,
    call_observers: list[Callable],  # type: ignore[type-arg]
    event_observers: list[Callable],  # type: ignore[type-arg]
) -> list[Bridge]:
    bridges: list[Bridge] = []
    if pcap_path:
        from dockit_core.outputs.pcap import PcapOutput, process_description

        pcap = PcapOutput(pcap_path, channels, process_description(model.processes, redact_argv))  # type: ignore[arg-type]
        channels.taps.append(pcap)
        bridges.append(pcap)
    if events_path:
        from dockit_core.outputs.events import open_event_log

        events = open_event_log(events_path, case, context, model, channels)
        call_observers.append(events.call)
        event_observers.append(events.event)
        bridges.append(events)
    return bridges
