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
    if path.startswith(("/tmp/", "/var/tmp/", "/run/", "/dev/shm/")):
        return TEMPORARY
    if path.startswith(("/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/", "/usr/local/bin/", "/usr/libexec/")):
        return PROGRAMS
    if path.startswith(("/home/", "/root/", "/work/", "/srv/", "/opt/", "/mnt/", "/media/")):
        return USER_FILES
    if path.startswith(("/usr/", "/var/", "/lib", "/boot/")):
        return SYSTEM_DATA
    return OTHERS
