"""Buffers in call arguments: strace writes a buffer as a C literal; dockit must give back the exact bytes
whichever way it reads them (straight at the second argument, or by splitting every argument)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dockit_core.ingest.args import buffer_arg, first_arg, iov_bytes, split_args
from dockit_core.ingest.cstring import literal_bytes

_NAMED = {9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\"}


def strace_literal(data: bytes, hex_all: bool = False) -> str:
    """How strace prints a buffer: printable ASCII as is, C escapes, octal (or \\xhh with -xx)."""
    parts = []
    for i, byte in enumerate(data):
        if hex_all:
            parts.append(f"\\x{byte:02x}")
        elif byte in _NAMED:
            parts.append(_NAMED[byte])
        elif 32 <= byte < 127:
            parts.append(chr(byte))
        else:
            following_digit = i + 1 < len(data) and 48 <= data[i + 1] <= 55
            parts.append(f"\\{byte:03o}" if following_digit else f"\\{byte:o}")
    return '"' + "".join(parts) + '"'


@given(st.binary(max_size=300), st.booleans(), st.booleans())
@settings(max_examples=500, deadline=None)
def test_a_buffer_is_read_back_byte_for_byte(data: bytes, cut: bool, hex_all: bool) -> None:
    literal = strace_literal(data, hex_all) + ("..." if cut else "")
    args = f'3<TCP:[127.0.0.1:50000->127.0.0.1:3306]>, {literal}, {len(data) + 10}, MSG_DONTWAIT, NULL, NULL'
    assert buffer_arg(args) == (data, cut)
    assert literal_bytes(split_args(args)[1]) == (data, cut)
    assert buffer_arg(f"7<pipe:[5648149]>, {literal}, 4096") == (data, cut)
    vector = f"3, [{{iov_base={literal}, iov_len={len(data)}}}, {{iov_base=\"x\", iov_len=1}}], 2"
    assert iov_bytes(vector) == (data + b"x", cut)


def test_a_second_argument_that_is_no_whole_literal_is_left_to_the_general_path() -> None:
    assert buffer_arg("3, 0x7ffd5c0b8a40, 4096") is None  # ltrace-style raw pointer
    assert buffer_arg('3, "abc') is None  # the line was cut inside the literal
    assert buffer_arg("3") is None


def test_the_first_argument_keeps_a_decoration_that_holds_a_comma() -> None:
    accepted = '5<UNIX-STREAM:[57267->56234,"/run/app.sock"]>'
    assert first_arg(f'{accepted}, "GET / HTTP/1.0\\r\\n", 18, 0, NULL, 0') == accepted
    assert buffer_arg(f'{accepted}, "GET / HTTP/1.0\\r\\n", 18, 0, NULL, 0') == (b"GET / HTTP/1.0\r\n", False)
    assert first_arg(accepted) == accepted  # close(5<...>)
    assert first_arg('AT_FDCWD</tmp>, "/etc/passwd", O_RDONLY') == "AT_FDCWD</tmp>"
    assert first_arg("3, 0x7ffd5c0b8a40, 4096") == "3"
