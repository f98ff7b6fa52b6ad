"""Testing helpers for decoder authors: everything a decoder's tests need, with no trace and no server.

    from decoders.testing import conversation, decode, assert_same_records, OUT, IN

    chunks = conversation([(OUT, b"GET color\\n"), (IN, b"VALUE blue\\n")])
    decoded = assert_same_records(KvDecoder, chunks)      # whole, byte by byte, random splits
    assert decoded.table("Command", "Key", "Status") == [("GET", "color", "ok")]

- chunks: `chunk`, `conversation`, `channel` (a ChannelInfo in one line), `from_hex` (bytes from a hex
  dump: xxd, hexdump -C, tshark, plain hex), `hexdump`, `load_chunks` / `save_chunks` (the fixture files
  `dockit extract --channel ID LOG` writes);
- variants: `byte_by_byte`, `random_splits`, `merged`, `cut`, `reversed_directions`, `garbage`,
  `variants`;
- running: `decode` (feed, close, collect, outputs checked against the contract), `Decoded` (records,
  annotations, secrets, problems; `table`, `of`, `attrs`, `notes`), `assert_same_records`,
  `assert_never_raises`; `replay(path, decoder=...)`: the records of a saved log, a fixture file or a
  pcap, through dockit's own pipeline, no file written.

See docs/decoders.md, "Testing a decoder".
"""

from decoders.api import Direction
from decoders.testing.chunks import (
    Fixture,
    channel,
    chunk,
    conversation,
    from_hex,
    hexdump,
    load_chunks,
    save_chunks,
)
from decoders.testing.replay import replay
from decoders.testing.run import Decoded, assert_never_raises, assert_same_records, decode
from decoders.testing.variants import (
    byte_by_byte,
    cut,
    garbage,
    merged,
    random_splits,
    reversed_directions,
    variants,
)

OUT = Direction.OUT
IN = Direction.IN

__all__ = [
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
]
