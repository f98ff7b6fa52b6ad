"""The kernel's process connector: fork, exec, uid/gid, session and exit events of every process on the
machine, without ptrace (netlink `NETLINK_CONNECTOR`, group `CN_IDX_PROC`; needs CAP_NET_ADMIN).

`parse_messages` is pure (bytes of one netlink datagram in, events out) so it is tested with bytes;
`ProcConnector` is the socket. Layouts: linux/netlink.h (nlmsghdr), linux/connector.h (cn_msg) and
linux/cn_proc.h (proc_event): the event data is a union whose fields this module reads by kind.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
NLMSG_DONE = 3

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_CN_MSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
_EVENT_HEAD = struct.Struct("=IIQ")  # what, cpu, timestamp_ns

KINDS = {
    0x00000001: "fork",
    0x00000002: "exec",
    0x00000004: "uid",
    0x00000040: "gid",
    0x00000080: "sid",
    0x80000000: "exit",
}
_BODIES = {
    "fork": struct.Struct("=iiii"),  # parent pid, parent tgid, child pid, child tgid
    "exec": struct.Struct("=ii"),  # pid, tgid
    "uid": struct.Struct("=iiII"),  # pid, tgid, real, effective
    "gid": struct.Struct("=iiII"),
    "sid": struct.Struct("=ii"),
    "exit": struct.Struct("=iiII"),  # pid, tgid, exit code (a wait status), exit signal (to the parent)
}


@dataclass(frozen=True, kw_only=True)
class ProcEvent:
    """One event. `pid`/`tgid` are the process (thread) it is about; for a fork, the child."""

    kind: str  # fork, exec, uid, gid, sid, exit
    pid: int
    tgid: int
    parent_pid: int | None = None  # fork: the parent (thread) that forked
    parent_tgid: int | None = None
    real_id: int | None = None  # uid/gid: the new real and effective ids
    effective_id: int | None = None
    wait_status: int | None = None  # exit: as wait(2) gives it: code << 8, or the signal (| 0x80 core)
    timestamp_ns: int = 0  # since boot

    @property
    def is_thread(self) -> bool:
        return self.pid != self.tgid

    @property
    def exit_code(self) -> int | None:
        if self.wait_status is None or self.wait_status & 0x7F:
            return None
        return (self.wait_status >> 8) & 0xFF

    @property
    def signal_number(self) -> int | None:
        if self.wait_status is None or not self.wait_status & 0x7F:
            return None
        return self.wait_status & 0x7F

    @property
    def core_dumped(self) -> bool:
        return bool(self.wait_status and self.wait_status & 0x80)


def parse_messages(datagram: bytes) -> Iterator[ProcEvent]:
    """The events in one netlink datagram (several messages may share one); anything short, of another
    connector or of a kind not listed in KINDS is skipped."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(datagram):
        length = _NLMSGHDR.unpack_from(datagram, offset)[0]
        if length < _NLMSGHDR.size or offset + length > len(datagram):
            return
        event = _parse_cn_msg(datagram[offset + _NLMSGHDR.size : offset + length])
        if event is not None:
            yield event
        offset += (length + 3) & ~3  # NLMSG_ALIGN


def _parse_cn_msg(message: bytes) -> ProcEvent | None:
    if len(message) < _CN_MSG.size + _EVENT_HEAD.size:
        return None
    idx, val, _seq, _ack, data_length, _flags = _CN_MSG.unpack_from(message)
    if idx != CN_IDX_PROC or val != CN_VAL_PROC:
        return None
    data = message[_CN_MSG.size : _CN_MSG.size + data_length]
    if len(data) < _EVENT_HEAD.size:
        return None
    what, _cpu, timestamp = _EVENT_HEAD.unpack_from(data)
    kind = KINDS.get(what)
    if kind is None:
        return None
    body = _BODIES[kind]
    if len(data) < _EVENT_HEAD.size + body.size:
        return None
    fields = body.unpack_from(data, _EVENT_HEAD.size)
    if kind == "fork":
        parent_pid, parent_tgid, child_pid, child_tgid = fields
        return ProcEvent(kind=kind, pid=child_pid, tgid=child_tgid, parent_pid=parent_pid,
                         parent_tgid=parent_tgid, timestamp_ns=timestamp)  # fmt: skip
    if kind in ("uid", "gid"):
        pid, tgid, real, effective = fields
        return ProcEvent(kind=kind, pid=pid, tgid=tgid, real_id=real, effective_id=effective, timestamp_ns=timestamp)
    if kind == "exit":
        pid, tgid, code, _signal = fields
        return ProcEvent(kind=kind, pid=pid, tgid=tgid, wait_status=code, timestamp_ns=timestamp)
    pid, tgid = fields
    return ProcEvent(kind=kind, pid=pid, tgid=tgid, timestamp_ns=timestamp)


def subscription(listen: bool) -> bytes:
    """The message that starts (or stops) the kernel's multicast of process events to a socket."""
    operation = struct.pack("=I", PROC_CN_MCAST_LISTEN if listen else PROC_CN_MCAST_IGNORE)
    cn_msg = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(operation), 0) + operation
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(cn_msg), NLMSG_DONE, 0, 0, os.getpid()) + cn_msg


class ConnectorUnavailable(Exception):
    """The process connector cannot be used here: why, and what to do, in one line."""


class ProcConnector:
    """A netlink socket subscribed to process events. `fileno()` for select; `read()` the events."""

    def __init__(self) -> None:
        try:
            self.socket = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        except (OSError, AttributeError) as error:
            raise ConnectorUnavailable(
                f"the kernel's process connector is not available here ({error}): it needs Linux with "
                "CONFIG_PROC_EVENTS"
            ) from error
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            self.socket.bind((0, CN_IDX_PROC))
            self.socket.send(subscription(True))
        except OSError as error:
            self.socket.close()
            raise ConnectorUnavailable(
                f"cannot listen to the kernel's process events ({error.strerror or error}): dockit must run "
                "as root (or with CAP_NET_ADMIN) in the host's network namespace; a container needs "
                "--cap-add NET_ADMIN and --network host"
            ) from error
        self.lost = 0  # datagrams the kernel dropped because dockit read too slowly (ENOBUFS)

    def fileno(self) -> int:
        return self.socket.fileno()

    def read(self) -> list[ProcEvent]:
        try:
            datagram = self.socket.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return []
        except OSError as error:
            if error.errno == 105:  # ENOBUFS: the receive queue overflowed, events were lost
                self.lost += 1
                return []
            raise
        return list(parse_messages(datagram))

    def close(self) -> None:
        try:
            self.socket.send(subscription(False))
        except OSError:
            pass
        self.socket.close()
