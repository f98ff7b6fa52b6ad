"""The TTC layer's codes: message types, function codes, OALL8 options, and the function-call head.

A DATA packet's payload is a sequence of TTC messages, each opening with its type byte; a function
call (3, or 17 for a piggyback) goes on with its function code and a sequence number. The bodies are
read by `calls` (the client's calls), `logon` (AUTH) and `replies` (the server's answers); their
values by `datatypes`.
"""

from __future__ import annotations

import enum


class MessageType(enum.IntEnum):
    PROTOCOL = 1
    DATA_TYPES = 2
    FUNCTION = 3
    ERROR = 4  # the end-of-call status, sent after every call, error or not
    ROW_HEADER = 6
    ROW_DATA = 7
    PARAMETER = 8
    STATUS = 9
    IO_VECTOR = 11
    LOB_DATA = 14
    WARNING = 15
    DESCRIBE_INFO = 16
    PIGGYBACK = 17
    FLUSH_OUT_BINDS = 19
    BIT_VECTOR = 21
    SERVER_SIDE_PIGGYBACK = 23


class Function(enum.IntEnum):
    REEXECUTE = 4
    FETCH = 5
    LOGOFF = 9
    COMMIT = 14
    ROLLBACK = 15
    REEXECUTE_AND_FETCH = 78
    EXECUTE = 94  # OALL8: parse, bind, execute, fetch as the options say
    LOB_OP = 96
    TPC_TXN_SWITCH = 103
    CLOSE_CURSORS = 105
    AUTH_PHASE_TWO = 115
    AUTH_PHASE_ONE = 118
    SET_END_TO_END_ATTR = 135
    PING = 147
    SET_SCHEMA = 152
    SESSION_GET = 162
    SESSION_RELEASE = 163


EXEC_PARSE = 0x01
EXEC_BIND = 0x08
EXEC_DEFINE = 0x10
EXEC_EXECUTE = 0x20
EXEC_FETCH = 0x40
EXEC_COMMIT = 0x100
EXEC_NOT_PLSQL = 0x8000
EXEC_DESCRIBE = 0x20000


# Pointers in the native representation (11g OCI, 64-bit), where integers are fixed-width little-endian:
# 8 bytes, 0xFE.. when the argument is present.

NATIVE_POINTER = b"\xfe\xff\xff\xff\xff\xff\xff\xff"
NULL_POINTER = bytes(8)


def build_function(function: int, sequence: int, body: bytes, piggyback: bool = False) -> bytes:
    return (
        bytes([MessageType.PIGGYBACK if piggyback else MessageType.FUNCTION, function, sequence & 0xFF])
        + body
    )
