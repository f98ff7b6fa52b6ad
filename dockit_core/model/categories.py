"""Which kind of file a path is, so a summary can be filtered (`-s 'CIM_DataFile:Category=[...]'`)
and a Dockerfile can tell packaged system files from the program's own."""

from __future__ import annotations

import re

SHARED_LIBRARIES = "Shared libraries"
SYSTEM_CONFIG = "System config files"
KERNEL_FILES = "Kernel files"
DEVICES = "Devices"
LANGUAGE_MODULES = "Language modules"
PROGRAMS = "Programs"
TEMPORARY = "Temporary files"
USER_FILES = "User files"
SYSTEM_DATA = "System data"
OTHERS = "Others"

CATEGORIES = (
    SHARED_LIBRARIES,
    SYSTEM_CONFIG,
    KERNEL_FILES,
    DEVICES,
    LANGUAGE_MODULES,
    PROGRAMS,
    TEMPORARY,
    USER_FILES,
    SYSTEM_DATA,
    OTHERS,
)

# The last component of the path, matched where it starts (none of its forms holds a slash).
_SHARED_LIB = re.compile(r"(?:lib[^/]*\.so(\.[\d.]+)*|ld-linux[^/]*|ld\.so\.[^/]+|[^/]+\.so(\.[\d.]+)*)$")
_LANGUAGE = re.compile(
    r"(/site-packages/|/dist-packages/|/lib/python\d|\.pyc?$|/perl5?/|\.pm$|/ruby/|\.rb$|/node_modules/|\.jar$|/lib/jvm/)"
)


def categorize(path: str) -> str:
    """The category of an absolute (or best-effort) path."""
    slash = path.rfind("/") + 1
    folder = path[:slash]  # up to the last slash: every test but a few is answered by it alone
    if folder == "/":
        return _categorize(path)  # `/proc`, `/sys`, `/lib...`: the name decides a prefix test
    facts = _FOLDERS.get(folder)
    if facts is None:
        facts = _folder_facts(folder)
    early, python_folder, late = facts
    if early is not None:
        return early
    name = path[slash:]
    if python_folder and _PYTHON_NAME.match(name):
        return LANGUAGE_MODULES
    # The patterns are tried only on names that can match them: in a name, the language patterns can
    # only match an ending (`$` matches before a final newline too); every library form holds ".so"
    # but `ld-linux*`.
    if name.endswith(_LANGUAGE_ENDINGS) and _LANGUAGE.search(name):
        return LANGUAGE_MODULES
    if (".so" in name or name.startswith("ld-linux")) and _SHARED_LIB.match(name):
        return SHARED_LIBRARIES
    return late


def _categorize(path: str) -> str:
    if path.startswith(("/proc/", "/sys/")) or path in ("/proc", "/sys"):
        return KERNEL_FILES
    if path.startswith("/dev/"):
        return DEVICES
    if path.startswith("/etc/"):
        return SYSTEM_CONFIG
    if _LANGUAGE.search(path):
        return LANGUAGE_MODULES
    if _SHARED_LIB.match(path, path.rfind("/") + 1):
        return SHARED_LIBRARIES
    return _late(path)


def _late(path: str) -> str:
    if path.startswith(("/tmp/", "/var/tmp/", "/run/", "/dev/shm/")):
        return TEMPORARY
    if path.startswith(("/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/", "/usr/local/bin/", "/usr/libexec/")):
        return PROGRAMS
    if path.startswith(("/home/", "/root/", "/work/", "/srv/", "/opt/", "/mnt/", "/media/")):
        return USER_FILES
    if path.startswith(("/usr/", "/var/", "/lib", "/boot/")):
        return SYSTEM_DATA
    return OTHERS


# What a folder (a path up to and including its last slash, other than "/") says of every file in it:
# (its category whatever the name, or None; whether a name `pythonN...` makes it a language module; the
# category when the name is neither a language module nor a shared library). A path is its folder and a
# name without a slash: each prefix tested ends with a slash (or is "/lib", longer than no such folder),
# so it is in the path exactly when it is in the folder; each language pattern but `\.py$` and the like
# (which the name alone decides) and `/lib/python\d` (which may run into the name) ends with a slash.
_FOLDERS: dict[str, tuple[str | None, bool, str]] = {}
_PYTHON_NAME = re.compile(r"python\d")
_LANGUAGE_ENDINGS = (".py", ".pyc", ".pm", ".rb", ".jar", "\n")


def _folder_facts(folder: str) -> tuple[str | None, bool, str]:
    early = None
    if folder.startswith(("/proc/", "/sys/")):
        early = KERNEL_FILES
    elif folder.startswith("/dev/"):
        early = DEVICES
    elif folder.startswith("/etc/"):
        early = SYSTEM_CONFIG
    elif _LANGUAGE.search(folder):
        early = LANGUAGE_MODULES
    facts = (early, folder.endswith("/lib/"), _late(folder))
    if len(_FOLDERS) >= 4096:
        _FOLDERS.clear()
    _FOLDERS[folder] = facts
    return facts
