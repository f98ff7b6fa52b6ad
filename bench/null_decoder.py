"""A decoder that claims every channel and decodes nothing: the floor under any real decoder.

bench/run.py replays the MySQL capture with it (`--decoder null_decoder:NullDecoder`) to show how much
of the decoding overhead is the pipeline handing bytes over (channels, chunks, decoder calls), and how
much is the MySQL decoder's own work.
"""

from __future__ import annotations

from collections.abc import Sequence

from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.records import Output


class NullDecoder(Decoder):
    name = "null"

    @classmethod
    def score(cls, data: bytes, direction: Direction, channel: ChannelInfo) -> int:
        return 1000  # above any built-in: every channel is this decoder's

    def feed(self, chunk: Chunk) -> Sequence[Output]:
        return ()

    def close(self, time: float | None) -> Sequence[Output]:
        return ()
