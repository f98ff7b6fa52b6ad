"""File access: open, stat and the other calls that name a path (unlink, rename, mkdir, link...).

Paths are resolved as the kernel would (cwd, dirfd, `-y` decorations), and `Created` follows what the
trace showed: a path seen absent, then opened with O_CREAT, was created by that open.
"""

from __future__ import annotations

import os.path
from functools import lru_cache

from dockit_core.ingest.args import parse_fd, parse_path, split_args
from dockit_core.ingest.cstring import parse_quoted
from dockit_core.ingest.decorations import parse_decoration
from dockit_core.ingest.events import Call
from dockit_core.model import FdEntry, FileNode, Process
from dockit_core.model.tracker.base import CallInfo, Handler, TrackerBase

_METADATA = frozenset(
    {
        "stat",
        "lstat",
        "stat64",
        "lstat64",
        "access",
        "readlink",
        "statfs",
        "chmod",
        "chown",
        "lchown",
        "truncate",
        "getxattr",
        "lgetxattr",
        "listxattr",
        "llistxattr",
        "utime",
        "utimes",
        "setxattr",
        "lsetxattr",
        "mknod",
    }
)

_METADATA_AT = frozenset(
    {
        "newfstatat",
        "fstatat64",
        "statx",
        "faccessat",
        "faccessat2",
        "readlinkat",
        "fchmodat",
        "fchownat",
        "utimensat",
        "futimesat",
        "mknodat",
    }
)

_ONE_PATH_AT = _METADATA_AT | {"unlinkat", "mkdirat"}

_SPECIAL_NAMES = frozenset({"", ".", ".."})

_TWO_PATHS = frozenset({"rename", "link", "symlink", "renameat", "renameat2", "linkat", "symlinkat"})

_AT_FIRST_PATH = _ONE_PATH_AT | {"openat", "openat2"}  # (dirfd, path, ...)
_PATH_CALLS = _METADATA | _METADATA_AT | {
    "unlink",
    "unlinkat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
}


@lru_cache(maxsize=1024)
def _is_normal_folder(path: str) -> bool:
    """An absolute path that normpath leaves as it is (the kernel's -y decorations always are)."""
    return path == "/" or (path.startswith("/") and not path.endswith("/") and os.path.normpath(path) == path)

def _join_normal(base: str, name: str) -> str:
    """normpath(join(base, name)) without its cost in the common case: one plain name in a normal
    folder (a directory walk stats every entry relative to the folder's fd)."""
    if "/" not in name and name not in _SPECIAL_NAMES and _is_normal_folder(base):
        return base + "/" + name if base != "/" else "/" + name
    return os.path.normpath(os.path.join(base, name))

def _quoted_text(text: str, quote: int) -> str | None:
    """The literal at `text[quote]` as text (surrogateescape), or None: a plain ASCII literal without
    escapes, the usual path, is taken as it is, without the regex and the round trip through bytes."""
    end = text.find('"', quote + 1)
    if end > 0:
        body = text[quote + 1 : end]
        if body.isascii() and "\\" not in body:
            return body
    parsed = parse_quoted(text, quote)
    return parsed[0].decode("utf-8", "surrogateescape") if parsed is not None else None


class FileCalls(TrackerBase):
    def _file_handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = dict.fromkeys(("open", "openat", "openat2", "creat", "open64"), self._open)
        handlers.update(dict.fromkeys(_PATH_CALLS, self._path_call))
        handlers.update(dict.fromkeys(_ONE_PATH_AT, self._one_path_at))
        return handlers

    def _resolve(self, process: Process, path: str, dirfd: int | None = None) -> str:
        if path.startswith("/"):
            return os.path.normpath(path) if "/." in path or "//" in path else path
        base = process.cwd
        if dirfd is not None and dirfd >= 0:
            entry = process.fds.get(dirfd)
            if entry is not None and isinstance(entry.node, FileNode):
                base = entry.node.path
        if not base:
            return path
        return _join_normal(base, path)

    def _resolve_at(self, process: Process, path: str, dir_arg: str) -> str:
        """A path of an *at() call, relative to its dirfd argument (`AT_FDCWD`, `3</srv/x>`...)."""
        if path.startswith("/") and (process.cwd is not None or not dir_arg.startswith("AT_FDCWD<")):
            return self._resolve(process, path)
        fd, decoration = parse_fd(dir_arg)
        return self._resolve_in(process, path, fd, decoration)

    def _resolve_in(self, process: Process, path: str, fd: int | None, decoration: str | None) -> str:
        """With -y the dirfd's decoration names the folder; `AT_FDCWD</home/x>` is the process's
        current directory, learnt even when the trace never showed a chdir."""
        absolute = path.startswith("/")
        if decoration and (not absolute or (fd == -100 and process.cwd is None)):
            deco = parse_decoration(decoration)
            if deco.kind == "file" and deco.path:
                if fd == -100:
                    process.cwd = deco.path
                if not absolute:
                    return _join_normal(deco.path, path)
        return self._resolve(process, path, fd)

    def _open(self, call: Call, process: Process, info: CallInfo) -> None:
        if not call.ok or call.retval is None:
            if call.errno == "ENOENT":
                self._note_absent(call, process)
            return
        args = split_args(call.args)
        if call.name in ("openat", "openat2"):
            dir_arg = args[0] if args else None
            path_arg, flags = (args[1] if len(args) > 1 else ""), (args[2] if len(args) > 2 else "")
        else:
            dir_arg = None
            path_arg, flags = (args[0] if args else ""), (args[1] if len(args) > 1 else "")
        decorated = parse_decoration(call.ret_decoration) if call.ret_decoration else None
        if decorated is not None and decorated.kind == "file" and decorated.path:
            path = decorated.path
        else:
            raw = parse_path(path_arg)
            if raw is None:
                return
            path = self._resolve(process, raw) if dir_arg is None else self._resolve_at(process, raw, dir_arg)
        known = path in self.model.files
        node = self.model.file(path)
        access = node.access(process.owner)
        access.opens += 1
        if call.name == "creat" or "O_CREAT" in flags:
            if self._creates(call.name, flags, path, known):
                access.created = True
        if self._absent:
            self._absent.discard(path)  # it exists now
        process.fds[call.retval] = FdEntry("file", node, "O_CLOEXEC" in flags)
        info.target = path

    def _creates(self, name: str, flags: str, path: str, known: bool) -> bool:
        """Whether an open with O_CREAT (or creat) made the file. Sure with O_EXCL, or when the trace
        showed the path absent; not when it showed the file there (opened, read, stat'ed). Without
        evidence, O_TRUNC and creat are taken as making a new file, plain O_CREAT (an append) not."""
        if "O_EXCL" in flags or path in self._absent:
            return True
        if known:
            return False
        return name == "creat" or "O_TRUNC" in flags

    def _note_absent(self, call: Call, process: Process) -> None:
        """A call failed with ENOENT: the path it named did not exist then."""
        args = split_args(call.args)
        if call.name in _AT_FIRST_PATH:
            if len(args) < 2:
                return
            raw = parse_path(args[1])
            path = self._resolve_at(process, raw, args[0]) if raw else None
        else:
            raw = parse_path(args[0]) if args else None
            path = self._resolve(process, raw) if raw else None
        if path:
            self._absent_add(path)

    def _absent_add(self, path: str) -> None:
        if len(self._absent) >= 100_000:
            self._absent.clear()
        self._absent.add(path)

    def _path_call(self, call: Call, process: Process, info: CallInfo) -> None:
        """stat, access, unlink, rename, mkdir...: calls that name a path (one-path *at() calls take
        `_one_path_at`)."""
        if not call.ok:
            if call.errno == "ENOENT" and call.name not in _TWO_PATHS:
                self._note_absent(call, process)
            return
        name = call.name
        args = split_args(call.args) if name in _TWO_PATHS else []
        paths: list[str] = []
        if name in ("rename", "link", "symlink"):
            paths = [p for p in (parse_path(a) for a in args[:2]) if p]
            paths = [self._resolve(process, p) for p in paths]
        elif name in ("renameat", "renameat2", "linkat"):
            if len(args) >= 4:
                src, dst = parse_path(args[1]), parse_path(args[3])
                if src and dst:
                    paths = [
                        self._resolve_at(process, src, args[0]),
                        self._resolve_at(process, dst, args[2]),
                    ]
        elif name == "symlinkat":
            if len(args) >= 3:
                dst = parse_path(args[2])
                if dst:
                    paths = [self._resolve_at(process, dst, args[1])]
        else:
            path = _quoted_text(call.args, 0) if call.args.startswith('"') else None
            if path:
                paths = [self._resolve(process, path)]
        if not paths:
            return
        info.target = paths[-1]
        if name in ("unlink", "unlinkat", "rmdir"):
            self.model.file(paths[0]).access(process.owner).deleted = True
            self._absent_add(paths[0])
        elif name in ("rename", "renameat", "renameat2") and len(paths) == 2:
            source, target = paths
            self.model.file(source).access(process.owner).renamed_to = target
            self.model.file(target).access(process.owner).renamed_from = source
            if "RENAME_EXCHANGE" in call.args:  # both stay, each with the other's content
                self.model.file(target).access(process.owner).renamed_to = source
                self.model.file(source).access(process.owner).renamed_from = target
            else:
                self._absent_add(source)
                self._absent.discard(target)
        elif name in ("mkdir", "mkdirat", "link", "linkat", "symlink", "symlinkat"):
            self.model.file(paths[-1]).access(process.owner).created = True
            self._absent.discard(paths[-1])
        else:
            self.model.file(paths[0]).access(process.owner).metadata += 1
            if self._absent:
                self._absent.discard(paths[0])

    def _one_path_at(self, call: Call, process: Process, info: CallInfo) -> None:
        """newfstatat, readlinkat, unlinkat...: one path relative to a dirfd, the bulk of a directory
        walk, so they have a handler of their own, and what their dirfd argument says (fd, decoration,
        the folder it names) is read once per distinct argument text."""
        retval = call.retval
        if retval is None or retval < 0 or call.errno is not None:  # not call.ok
            if call.errno == "ENOENT":
                self._note_absent(call, process)
            return
        args = call.args
        quote = args.find('"')
        if quote <= 0:
            return
        end = args.find('"', quote + 1)
        path: str | None = args[quote + 1 : end] if end > 0 else None
        if path is None or not path.isascii() or "\\" in path:
            path = _quoted_text(args, quote)
            if path is None:
                return
        head = args[: args.rfind(",", 0, quote)]
        dirfd = self._dirfds.get(head)
        if dirfd is None:
            dirfd = self._dirfd(head)
        fd, decoration, folder, normal = dirfd
        if folder is not None and path and path[0] != "/":
            # _resolve_in's decorated relative case: the folder the decoration names, then the name
            if fd == -100:
                process.cwd = folder
            if normal and "/" not in path and path not in _SPECIAL_NAMES:
                target = folder + "/" + path if folder != "/" else "/" + path
            else:
                target = os.path.normpath(os.path.join(folder, path))
        else:
            if path == "" and decoration:  # AT_EMPTY_PATH on an fd
                path = parse_decoration(decoration).path or ""
            if not path:
                return
            target = self._resolve_in(process, path, fd, decoration)
        info.target = target
        node = self.model.files.get(target)
        if node is None:
            node = self.model.file(target)
        owner = process.key if process.tgid is None else process.owner
        access = node.accesses.get(owner)
        if access is None:
            access = node.access(owner)
        name = call.name
        if name == "unlinkat":
            access.deleted = True
            self._absent_add(target)
        elif name == "mkdirat":
            access.created = True
        else:
            access.metadata += 1
            if self._absent:
                self._absent.discard(target)

    def _dirfd(self, head: str) -> tuple[int | None, str | None, str | None, bool]:
        """The dirfd argument of a one-path *at() call: (fd, decoration, the folder the decoration
        names when it names a file, else None, whether that folder is normal); kept for the calls that
        follow (a few thousand at most)."""
        fd, decoration = parse_fd(head)
        folder = None
        if decoration:
            deco = parse_decoration(decoration)
            if deco.kind == "file" and deco.path:
                folder = deco.path
        if len(self._dirfds) >= 4096:
            self._dirfds.clear()
        normal = folder is not None and _is_normal_folder(folder)
        found = self._dirfds[head] = (fd, decoration, folder, normal)
        return found
