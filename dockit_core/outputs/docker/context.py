"""The build context (`PREFIX.docker/`), written only inside itself.

The paths to copy come from a log, which may be crafted: `/opt/../../../etc/hostname` must not become
`PREFIX.docker/rootfs/../../../etc/hostname`, and a symbolic link already sitting at `PREFIX.docker`,
at `rootfs` or at any folder inside (left there by someone else) must not carry a write elsewhere.
So every path is normalised and checked to stay inside, and every folder is opened relative to its
parent's descriptor with O_NOFOLLOW: a link met on the way is refused, never followed.
"""

from __future__ import annotations

import os
import shutil
import stat

from dockit_core.outputs.atomic import OutputError, output_error
from dockit_core.outputs.docker.credentials import normal_path

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(ValueError):
    """A path that would leave the build context, or go through a symbolic link inside it."""


def context_path(path: str) -> str:
    """`path` (absolute, from a log) as a path relative to rootfs/, or UnsafePath."""
    if not path.startswith("/") or "\0" in path:
        raise UnsafePath(f"{path!r} is not an absolute path")
    relative = normal_path(path).lstrip("/")
    parts = relative.split("/")
    if not relative or any(part in ("", ".", "..") for part in parts):
        raise UnsafePath(f"{path!r} leaves the build context")
    return relative


class BuildContext:
    """`PREFIX.docker/` opened once, without following a link; `rootfs/` made empty inside it."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        try:
            os.makedirs(os.path.dirname(os.path.abspath(folder)), exist_ok=True)
            try:
                os.mkdir(folder, 0o755)
            except FileExistsError:
                pass
            self.fd = os.open(folder, _DIRECTORY)
        except OSError as error:
            if os.path.islink(folder):
                raise OutputError(f"{folder} is a symbolic link: refused (the build context is written "
                                  "only in a folder of its own)") from error  # fmt: skip
            raise output_error(folder, error) from error
        self.rootfs: int | None = None

    def close(self) -> None:
        for fd in (self.rootfs, self.fd):
            if fd is not None:
                os.close(fd)
        self.rootfs = None

    def reset_rootfs(self) -> None:
        """No `rootfs/` (our own output of an earlier run goes; a link there is removed, not followed);
        the first copy makes it anew."""
        try:
            info = os.stat("rootfs", dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            info = None
        try:
            if info is not None:
                if stat.S_ISDIR(info.st_mode):
                    shutil.rmtree("rootfs", dir_fd=self.fd)
                else:
                    os.unlink("rootfs", dir_fd=self.fd)
        except OSError as error:
            raise output_error(os.path.join(self.folder, "rootfs"), error) from error

    def _rootfs(self) -> int:
        if self.rootfs is not None:
            return self.rootfs
        try:
            os.mkdir("rootfs", 0o755, dir_fd=self.fd)
            self.rootfs = os.open("rootfs", _DIRECTORY, dir_fd=self.fd)
            return self.rootfs
        except OSError as error:
            raise output_error(os.path.join(self.folder, "rootfs"), error) from error

    def copy_in(self, source: str) -> None:
        """Copy the host file `source` to `rootfs/<source>` (OSError or UnsafePath when it cannot)."""
        relative = context_path(source)
        *folders, name = relative.split("/")
        parent = os.dup(self._rootfs())
        try:
            for folder in folders:
                try:
                    os.mkdir(folder, 0o755, dir_fd=parent)
                except FileExistsError:
                    pass
                try:
                    child = os.open(folder, _DIRECTORY, dir_fd=parent)
                except OSError as error:
                    raise UnsafePath(f"rootfs/{relative}: {folder} is not a folder of the context") from error
                os.close(parent)
                parent = child
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            with open(normal_path(source), "rb") as reader:
                info = os.fstat(reader.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise UnsafePath(f"{source} is not a regular file")
                out = os.open(name, flags, 0o600, dir_fd=parent)
                with open(out, "wb") as writer:
                    shutil.copyfileobj(reader, writer, 1 << 20)
                    os.chmod(writer.fileno(), stat.S_IMODE(info.st_mode))
                    os.utime(writer.fileno(), ns=(info.st_atime_ns, info.st_mtime_ns))
        finally:
            os.close(parent)

    def write_file(self, name: str, text: str) -> str:
        """`name` in the context, written whole or not at all (a link at `name` is replaced, not
        followed); its path."""
        temporary = f".{name}.{os.getpid()}.partial"
        path = os.path.join(self.folder, name)
        try:
            fd = os.open(
                temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=self.fd
            )
            try:
                with open(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
                    out.write(text)
                os.replace(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            except BaseException:
                try:
                    os.unlink(temporary, dir_fd=self.fd)
                except OSError:
                    pass
                raise
        except OSError as error:
            raise output_error(path, error) from error
        return path
