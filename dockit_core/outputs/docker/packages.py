"""Which distribution package owns a file (`dpkg -S`, `rpm -qf`), and which pip distribution a Python
module file belongs to (its `*.dist-info/RECORD`).

Package managers are asked in batches (one `dpkg-query -S` for hundreds of paths) and their answers are
kept on disk between runs (`$XDG_CACHE_HOME/dockit/` or `~/.cache/dockit/`), keyed by the package
database's modification stamp, so an install or removal empties the cache by itself. A path is looked up
as traced, with its merged-/usr twin (`/usr/lib/x` and `/lib/x`: Debian's database often knows only one)
and its resolved symlink target.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from importlib import metadata

from dockit_core.outputs.atomic import atomic_open

DPKG_FAMILY = frozenset({"debian", "ubuntu", "linuxmint", "raspbian", "kali", "pop", "devuan"})
RPM_FAMILY = frozenset(
    {"fedora", "rhel", "centos", "rocky", "almalinux", "ol", "amzn", "opensuse-leap", "opensuse-tumbleweed"}
)
BATCH = 400  # paths per dpkg/rpm call: far below ARG_MAX
_GLOB = re.compile(r"[*?\[\]\\]")
_MERGED = ("/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/")

Runner = Callable[[list[str]], str]


def family(os_release: str) -> str | None:
    """ "dpkg" or "rpm" for a base image name such as "debian:12"; None when unknown."""
    name = os_release.partition(":")[0].lower()
    if name in DPKG_FAMILY:
        return "dpkg"
    if name in RPM_FAMILY:
        return "rpm"
    return None


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dockit")


def candidates(path: str) -> list[str]:
    """The names under which a package database may know `path`: itself, its merged-/usr twin, and the
    same for its resolved symlink target."""
    names = _merged_twins(path)
    try:
        real = os.path.realpath(path)
    except OSError:
        real = path
    if real != path:
        names.extend(n for n in _merged_twins(real) if n not in names)
    return names


def reached_through_link(path: str, matched: str) -> bool:
    """Whether the package owns `path` only under its symlink target (a venv's python, an
    /etc/alternatives link): the image needs that link made again."""
    return matched not in _merged_twins(path)


def _merged_twins(path: str) -> list[str]:
    names = [path]
    for prefix in _MERGED:
        if path.startswith("/usr" + prefix):
            names.append(path[4:])
        elif path.startswith(prefix):
            names.append("/usr" + path)
    return names


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, errors="surrogateescape", check=False)
    return done.stdout


class PackageOwners:
    """Owners of paths on this machine, by the local package manager; `None` for no owner."""

    def __init__(self, manager: str | None, cache: str | None = None, runner: Runner = _run) -> None:
        self.manager = manager if manager and self._available(manager) else None
        self.cache_path = os.path.join(cache or cache_dir(), f"owners-{self.manager}.json")
        self.runner = runner
        self.queried = 0  # paths sent to the package manager in this run (the rest came from the cache)
        self.matched: dict[str, str] = {}  # path -> the name its package knows it by
        self._stamp = self._database_stamp()
        self._known: dict[str, str] = self._load()
        self._dirty = False

    @staticmethod
    def _available(manager: str) -> bool:
        return shutil.which("dpkg-query" if manager == "dpkg" else "rpm") is not None

    def _database_stamp(self) -> str:
        paths = {"dpkg": ["/var/lib/dpkg/status"], "rpm": ["/var/lib/rpm/rpmdb.sqlite", "/var/lib/rpm"]}
        for path in paths.get(self.manager or "", []):
            try:
                info = os.stat(path)
            except OSError:
                continue
            return f"{path}:{info.st_mtime_ns}:{info.st_size}"
        return ""

    def _load(self) -> dict[str, str]:
        if self.manager is None:
            return {}
        try:
            with open(self.cache_path, encoding="utf-8", errors="surrogateescape") as stream:
                data = json.load(stream)
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("stamp") != self._stamp:
            return {}
        owners = data.get("owners")
        return dict(owners) if isinstance(owners, dict) else {}

    def save(self) -> None:
        if not self._dirty or self.manager is None:
            return
        try:
            with atomic_open(self.cache_path, "w", encoding="utf-8", errors="surrogateescape") as out:
                json.dump({"stamp": self._stamp, "owners": self._known}, out)
        except OSError:
            return  # a read-only home: the cache is a convenience
        self._dirty = False

    def owners(self, paths: Iterable[str]) -> dict[str, str | None]:
        """Package name (without architecture) owning each path, or None."""
        paths = list(dict.fromkeys(paths))
        if self.manager is None:
            return {path: None for path in paths}
        names = {path: candidates(path) for path in paths}
        wanted = [n for ns in names.values() for n in ns if n not in self._known and not _GLOB.search(n)]
        wanted = list(dict.fromkeys(wanted))
        for start in range(0, len(wanted), BATCH):
            batch = wanted[start : start + BATCH]
            found = self._query(batch)
            self.queried += len(batch)
            for name in batch:
                self._known[name] = found.get(name, "")
            self._dirty = True
        result: dict[str, str | None] = {}
        for path, ns in names.items():
            name = next((n for n in ns if self._known.get(n)), None)
            result[path] = self._known[name] if name else None
            if name:
                self.matched[path] = name
        self.save()
        return result

    def _query(self, batch: list[str]) -> dict[str, str]:
        if self.manager == "dpkg":
            return parse_dpkg_search(self.runner(["dpkg-query", "-S", "--", *batch]))
        return parse_rpm_query(batch, self.runner(["rpm", "-qf", "--qf", "%{NAME}\\n", "--", *batch]))


def parse_dpkg_search(output: str) -> dict[str, str]:
    """`libc6:amd64, libc6-dev: /lib/x` lines -> {path: "libc6"}; diversion lines are skipped."""
    owners: dict[str, str] = {}
    for line in output.splitlines():
        if line.startswith(("diversion by", "local diversion")):
            continue
        packages, separator, path = line.partition(": /")
        if not separator:
            continue
        first = packages.split(",")[0].strip().split(":")[0]
        if first:
            owners.setdefault("/" + path, first)
    return owners


def parse_rpm_query(batch: list[str], output: str) -> dict[str, str]:
    """`rpm -qf` prints one line per path in order: a name, or `file X is not owned by any package`."""
    owners: dict[str, str] = {}
    lines = output.splitlines()
    if len(lines) != len(batch):
        return owners  # a path owned twice shifts the lines: trust nothing rather than guess
    for path, line in zip(batch, lines, strict=True):
        if line and " " not in line.strip():
            owners[path] = line.strip()
    return owners


class PipDistributions:
    """Pip-installed distributions of the site-packages folders that traced files live in."""

    _SITE = re.compile(r"^(.*?/(?:site|dist)-packages)/")

    def __init__(self) -> None:
        self._indexes: dict[str, dict[str, tuple[str, str]]] = {}

    def owner(self, path: str) -> tuple[str, str] | None:
        """(name, version) of the installed distribution whose RECORD lists `path`."""
        match = self._SITE.match(path)
        if match is None:
            return None
        site = match.group(1)
        index = self._indexes.get(site)
        if index is None:
            index = self._indexes[site] = self._index(site)
        return index.get(os.path.normpath(path))

    @staticmethod
    def _index(site: str) -> dict[str, tuple[str, str]]:
        index: dict[str, tuple[str, str]] = {}
        try:
            distributions = list(metadata.distributions(path=[site]))
        except OSError:
            return index
        for distribution in distributions:
            # METADATA is parsed anew at each `.metadata` or `.version`: once per distribution, not per
            # file of its RECORD (120 distributions took 25 s)
            meta = distribution.metadata
            name = meta["Name"] if meta else None
            if not name:
                continue
            version = meta["Version"] or ""
            try:
                files = distribution.files or []
            except (OSError, ValueError):
                continue
            for entry in files:
                full = os.path.normpath(os.path.join(site, str(entry)))
                index.setdefault(full, (name, version))
        return index
