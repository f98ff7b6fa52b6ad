"""The same conversation cut differently: a decoder must give the same records whichever way the bytes
came (whole, one byte per call, split at random, several messages per call), and must never raise on
bytes that make no sense. A chunk is one system call, so these are the ways a real trace differs."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

from decoders.api import Chunk, Direction

__all__ = ["byte_by_byte", "cut", "garbage", "merged", "random_splits", "reversed_directions", "variants"]


def _pieces(item: Chunk, bounds: Sequence[int]) -> list[Chunk]:
    """`item` split at `bounds` (offsets into its data); the bytes the tracer lost stay after the last."""
    data = item.data
    edges = [0, *sorted(b for b in set(bounds) if 0 < b < len(data)), len(data)]
    pieces = [replace(item, data=data[a:b], size=b - a) for a, b in zip(edges, edges[1:], strict=False)]
    if not pieces:
        return [item]
    last = pieces[-1]
    pieces[-1] = replace(last, size=last.size + item.missing)
    return pieces


def byte_by_byte(chunks: Iterable[Chunk]) -> list[Chunk]:
    """Every byte in a chunk of its own (time, pid, direction and call kept)."""
    return [piece for item in chunks for piece in _pieces(item, range(1, len(item.data)))]


def random_splits(chunks: Iterable[Chunk], seed: int, max_pieces: int = 4) -> list[Chunk]:
    """Each chunk cut at up to `max_pieces - 1` random places; the same `seed` gives the same cuts."""
    rng = random.Random(seed)
    out: list[Chunk] = []
    for item in chunks:
        count = rng.randint(0, max_pieces - 1) if len(item.data) > 1 else 0
        out += _pieces(item, [rng.randint(1, len(item.data) - 1) for _ in range(count)])
    return out


def merged(chunks: Iterable[Chunk]) -> list[Chunk]:
    """Consecutive chunks of one direction joined into one (as one larger read or write would carry
    them), keeping the first's time, pid and call. A chunk that lost bytes ends its group."""
    out: list[Chunk] = []
    for item in chunks:
        last = out[-1] if out else None
        if last is not None and last.direction is item.direction and not last.missing:
            out[-1] = replace(last, data=last.data + item.data, size=last.size + item.size)
        else:
            out.append(item)
    return out


def cut(chunks: Sequence[Chunk], index: int, keep: int) -> list[Chunk]:
    """Chunk `index` cut to its first `keep` bytes, its size kept: as a small `strace -s` would show it
    (`missing` bytes lost). The other chunks are unchanged."""
    out = list(chunks)
    item = out[index]
    out[index] = replace(item, data=item.data[:keep])
    return out


def reversed_directions(chunks: Iterable[Chunk]) -> list[Chunk]:
    """The same conversation seen from the other end (use with a channel whose `listening` is flipped)."""
    return [replace(item, direction=item.direction.reverse()) for item in chunks]


def garbage(seed: int, count: int = 40, max_size: int = 300, alphabet: bytes | None = None) -> list[Chunk]:
    """`count` chunks of random bytes in random directions, some cut by a random number of lost bytes:
    feed them and `close`, nothing may raise. `alphabet` narrows the bytes (a text protocol's letters
    reach deeper into its parser than uniform noise does)."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        size = rng.randint(0, max_size)
        if alphabet:
            data = bytes(rng.choice(alphabet) for _ in range(size))
        else:
            data = rng.randbytes(size)
        lost = rng.choice((0, 0, 0, rng.randint(1, 1 << 20)))
        direction = rng.choice((Direction.OUT, Direction.IN))
        out.append(
            Chunk(
                data=data,
                direction=direction,
                time=1_700_000_000.0 + n,
                pid=1,
                size=size + lost,
                call_index=n + 1,
            )
        )
    return out


def variants(chunks: Sequence[Chunk], seeds: Iterable[int] = range(5)) -> Iterator[tuple[str, list[Chunk]]]:
    """(label, chunks) for: whole, byte by byte, and random splits with each seed. These keep every
    byte's time and call, so a decoder must give exactly the same records. (`merged` does not: joined
    calls take the first one's time, so start times and latencies move; use it on its own.)"""
    yield "whole", list(chunks)
    yield "byte by byte", byte_by_byte(chunks)
    for seed in seeds:
        yield f"random splits (seed {seed})", random_splits(chunks, seed)
