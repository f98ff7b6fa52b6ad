"""Which files hold credentials: never copied into an image, whatever the path spelling a log used
(`/etc/./shadow`, `/opt/../etc/shadow`, `//etc/gshadow`, a symbolic link to a key), each listed in the
Dockerfile with why, to be mounted at run time.

A file is judged by its name (shadow files, ~/.ssh, .netrc, .pgpass, cloud credential files...), under
each of its spellings (as named, normalised, and its real path on this machine), then by what it holds
(a private key anywhere; in a configuration file, a `password=`-like line, a URL with a password, or
git's `http.extraHeader`, which carries tokens).
"""

from __future__ import annotations

import os
import re

# (pattern on a normalised absolute path, why it is a credential)
_BY_NAME: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^/etc/(?:g?shadow-?|security/opasswd)$"), "password hashes"),
    (re.compile(r"^/etc/ssh/ssh_host_[^/]*_key$|^/etc/ssl/private/"), "a private key of this host"),
    (re.compile(r"/\.ssh/"), "an SSH key folder"),
    (re.compile(r"/\.gnupg/"), "GnuPG keys"),
    (re.compile(r"/[._]netrc$"), "logins and passwords (.netrc)"),
    (re.compile(r"/\.pgpass$"), "PostgreSQL passwords (.pgpass)"),
    (re.compile(r"/\.my\.cnf$|/\.mylogin\.cnf$"), "MySQL client options with passwords"),
    (re.compile(r"/\.git-credentials$"), "git credentials"),
    (
        re.compile(r"/\.aws/|/\.azure/|/\.config/gcloud/|/application_default_credentials\.json$"),
        "cloud credentials",
    ),
    (
        re.compile(r"/\.kube/config$|/\.docker/config\.json$|/\.vault-token$|/\.config/gh/hosts\.yml$"),
        "tokens",
    ),
    (re.compile(r"/\.pypirc$|/\.npmrc$|/\.boto$|/\.s3cfg$|/\.terraform\.d/credentials"), "tokens"),
    (re.compile(r"\.(?:key|p12|pfx|jks|keystore|keytab)$", re.I), "a key or a keystore"),
    (re.compile(r"/private/", re.I), "a private folder"),
    (re.compile(r"credential[^/]*$", re.I), "named as credentials"),
]
_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_SECRET_LINE = re.compile(
    rb"(?im)^[ \t]*(?:export[ \t]+)?[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)[\w.-]*[ \t]*[=:][ \t]*[^\s#;]"
)
_EXTRA_HEADER = re.compile(rb"(?im)^[ \t]*extraheader[ \t]*=")
_URL_PASSWORD = re.compile(rb"[a-zA-Z][\w+.-]*://[^/\s:@]*:[^@/\s]+@")
_CONFIG_NAME = re.compile(
    r"(?:\.(?:cnf|conf|cfg|ini|env|properties|ya?ml|toml|json|rc|netrc)|/\.[^/]+|/config)$", re.I
)
_READ_LIMIT = 1 << 20


def normal_path(path: str) -> str:
    """`path` as the kernel resolves its dots and slashes: `/opt/../etc/shadow` -> `/etc/shadow`,
    `//etc/gshadow` -> `/etc/gshadow` (normpath keeps a leading `//`)."""
    normal = os.path.normpath(path)
    return "/" + normal.lstrip("/") if normal.startswith("//") else normal


def credential_reason(path: str, content: bool = True) -> str | None:
    """Why the file at `path` holds credentials, or None. `content`: also read it (the first MB)."""
    spellings = {path, normal_path(path)}
    try:
        spellings.add(os.path.realpath(normal_path(path)))
    except (OSError, ValueError):
        pass
    for spelled in spellings:
        for pattern, why in _BY_NAME:
            if pattern.search(spelled):
                return why
    if not content:
        return None
    try:
        with open(normal_path(path), "rb") as stream:
            head = stream.read(_READ_LIMIT)
    except (OSError, ValueError):
        return None  # not here or not readable: it is not copied either way
    if _PRIVATE_KEY.search(head):
        return "holds a private key"
    if any(_CONFIG_NAME.search(spelled) for spelled in spellings) or path.startswith("/etc/"):
        if _EXTRA_HEADER.search(head):
            return "holds an http.extraHeader (a token)"
        if _SECRET_LINE.search(head):
            return "holds a password or token setting"
        if _URL_PASSWORD.search(head):
            return "holds a URL with a password"
    return None
