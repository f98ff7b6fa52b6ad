"""How messages settle: the broker's confirms (basic.ack, basic.nack, `multiple` included), the
client's basic.ack, basic.nack and basic.reject of deliveries, and transactions committed or rolled
back."""

from __future__ import annotations

from typing import Any

from decoders.amqp.state import ChannelState, flag
from decoders.messaging import (
    STATUS_ERROR,
    STATUS_OK,
    settle,
)
from decoders.records import Output


class AcknowledgementsMixin:
    """How messages settle: the broker's confirms (basic.ack, basic.nack, `multiple` included), the Part of `AmqpDecoder`."""

    def _confirm(
        self, name: str, args: dict[str, Any], state: ChannelState, time: float | None, out: list[Output]
    ) -> None:
        """The broker's basic.ack or basic.nack of publishes (publisher confirms)."""
        tag = args.get("delivery-tag")
        if not isinstance(tag, int):
            return
        records = state.unconfirmed.pop_until(tag) if args.get("multiple") else [state.unconfirmed.pop(tag)]
        for record in records:
            if record is None:
                continue
            sequence = record.extra.get("PublishSequence")
            returned = state.returned.pop(sequence, None) if isinstance(sequence, int) else None
            if returned is not None:
                out.append(settle(record, STATUS_ERROR, time, ack="returned", error=f"returned: {returned}"))
            elif name == "basic.ack":
                out.append(settle(record, STATUS_OK, time, ack="confirm"))
            else:
                out.append(
                    settle(record, STATUS_ERROR, time, ack="nack", error="the broker refused the message")
                )

    def _client_settles(
        self, name: str, args: dict[str, Any], state: ChannelState, time: float | None, out: list[Output]
    ) -> None:
        """The client's basic.ack, basic.nack or basic.reject of deliveries (deferred in a transaction)."""
        tag = args.get("delivery-tag")
        if not isinstance(tag, int):
            return
        multiple = bool(args.get("multiple")) and name != "basic.reject"
        requeue = args.get("requeue") if name != "basic.ack" else None
        if state.transaction:
            state.tx_settles.append((name, tag, multiple, requeue, time))
            return
        self._settle_deliveries(name, tag, multiple, requeue, state, time, out)

    def _settle_deliveries(
        self,
        name: str,
        tag: int,
        multiple: bool,
        requeue: bool | None,
        state: ChannelState,
        time: float | None,
        out: list[Output],
    ) -> None:
        if multiple:
            records = state.unacked.pop_until(tag) if tag else state.unacked.drain()  # tag 0: all so far
        else:
            records = [state.unacked.pop(tag)]
        kind = name.removeprefix("basic.")
        for record in records:
            if record is None:
                continue
            if requeue is not None:
                record.extra["Requeue"] = flag(requeue)
            if kind == "ack":
                out.append(settle(record, STATUS_OK, time, ack="ack"))
            else:
                out.append(
                    settle(record, STATUS_ERROR, time, ack=kind, error=f"the client refused it ({kind})")
                )

    def _commit(self, state: ChannelState, time: float | None, out: list[Output]) -> None:
        for record in state.tx_publishes:
            record.extra["Transaction"] = "committed"
            out.append(settle(record, STATUS_OK, time, ack="commit"))
        state.tx_publishes.clear()
        for name, tag, multiple, requeue, _ in state.tx_settles:
            self._settle_deliveries(name, tag, multiple, requeue, state, time, out)
        state.tx_settles.clear()

    def _rollback(self, state: ChannelState, time: float | None, out: list[Output]) -> None:
        for record in state.tx_publishes:
            record.extra["Transaction"] = "rolled-back"
            out.append(
                settle(record, STATUS_ERROR, time, ack="rollback", error="the transaction was rolled back")
            )
        state.tx_publishes.clear()
        state.tx_settles.clear()  # the acknowledgements are undone: those deliveries wait again
