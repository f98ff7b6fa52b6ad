"""What /proc says of a process dockit attaches to: no clone or execve in the trace will say it."""

from __future__ import annotations

import os


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            return [part.decode("utf-8", "surrogateescape") for part in stream.read().split(b"\0") if part]
    except OSError:
        return []


def exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def environ(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as stream:
            pairs = [
                item.decode("utf-8", "surrogateescape").partition("=") for item in stream.read().split(b"\0")
            ]
    except OSError:
        return {}
    return {key: value for key, _, value in pairs if key}
