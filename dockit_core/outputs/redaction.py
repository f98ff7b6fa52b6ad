"""Secrets kept out of every output but the tracer's own .log: passwords on command lines, credential
headers in buffers shown by the calls file, user:password in URLs.

Decoded records are redacted by their decoders (decoders/redact.py names the secret headers); this
module covers what the core itself prints: command lines (summary, .ini, Dockerfile) and call arguments.
"""

from __future__ import annotations

import os
import re

from decoders.redact import REDACTED, SECRET_HEADER_WORDS, SECRET_HEADERS, redact_sql, redact_url

# Clients whose -pSECRET is a password (not a port or a parent flag as in `mkdir -p`).
_PASSWORD_DASH_P = frozenset(
    {
        "mysql",
        "mariadb",
        "mysqldump",
        "mariadb-dump",
        "mysqladmin",
        "mariadb-admin",
        "mysqlimport",
        "mysqlshow",
        "mysqlcheck",
        "mariadb-check",
        "mysqlslap",
        "mariadb-slap",
    }
)
_MOSQUITTO_CLIENTS = frozenset({"mosquitto_pub", "mosquitto_sub", "mosquitto_rr"})
_PASSWORD_OPTION = re.compile(r"^(--?(?:password|passwd|pass|pwd|secret|token|api-key|apikey)=)(.+)$", re.I)
_PASSWORD_FLAG = re.compile(r"^--?(?:password|passwd|pass|pwd|secret|token|api-key|apikey)$", re.I)
_URL_CREDENTIALS = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^/\s:@]*):[^@/\s]*@")
_SECRET_ASSIGNMENT = re.compile(r"^([A-Za-z_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_KEY)[A-Za-z_]*=)(.+)$")
# The known credential headers, and any name with a secret word in it (X-Vault-Token, X-Myapp-Api-Key).
_HEADER_NAMES = "|".join(
    [rf"[A-Za-z0-9-]*(?:{SECRET_HEADER_WORDS})[A-Za-z0-9-]*"]
    + sorted((re.escape(h) for h in SECRET_HEADERS), key=len, reverse=True)
)
# A header line inside text: in strace's escaped buffers the line ends at a literal `\r` or `\n`.
_SECRET_HEADER_LINE = re.compile(
    rf"(?i)(?:^|(?<=\\n)|(?<=[\s\"']))({_HEADER_NAMES})(\s*:\s*)(?:[^\\\r\n\"]|\\(?![rn\"]))+"
)


def redact_argv(argv: list[str]) -> list[str]:
    """The command line with its passwords replaced: `-pSECRET`, `--password=x`, `-u user:pass`..."""
    program = os.path.basename(argv[0]) if argv else ""
    result: list[str] = []
    hide_next = False
    user_next = False
    for index, arg in enumerate(argv):
        if hide_next:
            result.append(REDACTED)
            hide_next = False
            continue
        if user_next:
            user, colon, _password = arg.partition(":")
            result.append(f"{user}:{REDACTED}" if colon else arg)
            user_next = False
            continue
        if index > 0:
            if (
                program in _PASSWORD_DASH_P
                and arg.startswith("-p")
                and len(arg) > 2
                and not arg.startswith("--")
            ):
                arg = "-p" + REDACTED
            elif _PASSWORD_FLAG.match(arg):
                hide_next = True
            elif arg in ("-u", "--user", "--proxy-user", "-U") and program in ("curl", "wget"):
                user_next = True
            elif arg in ("-b", "--cookie", "--oauth2-bearer", "--proxy-pass", "--pass") and program == "curl":
                hide_next = True
            elif arg in ("-P", "--pw") and program in _MOSQUITTO_CLIENTS:  # Mosquitto's password flag
                hide_next = True
            elif arg.startswith(("--user=", "--proxy-user=")):
                option, _, value = arg.partition("=")
                user, colon, _password = value.partition(":")
                arg = f"{option}={user}:{REDACTED}" if colon else arg
            elif arg.startswith("--password=") or _PASSWORD_OPTION.match(arg):
                arg = _PASSWORD_OPTION.sub(lambda m: m.group(1) + REDACTED, arg)
        arg = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}:{REDACTED}@", arg)
        arg = _SECRET_ASSIGNMENT.sub(lambda m: m.group(1) + REDACTED, arg)
        arg = redact_sql(redact_text(arg))  # `mariadb -e "CREATE USER u IDENTIFIED BY '...'"`
        result.append(arg)
    return result


def redact_text(text: str) -> str:
    """Credential header values (Authorization, Cookie...), URL passwords and secret query parameters
    (`?access_token=`) inside free text."""
    text = redact_url(text)
    if ":" not in text:
        return text
    text = _SECRET_HEADER_LINE.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)


def redact_call_arguments(name: str, text: str) -> str:
    """A call's argument text as the calls file shows it: credential headers in buffers and passwords in
    an execve's argv replaced."""
    if name in ("execve", "execveat"):
        from dockit_core.ingest.args import parse_string_array

        argv_start = text.find("[")
        if argv_start >= 0:
            argv = parse_string_array(text[argv_start:])
            for original, cleaned in zip(argv, redact_argv(argv), strict=True):
                if original != cleaned:
                    text = text.replace(_quoted(original), _quoted(cleaned))
    return redact_sql(redact_text(text))  # SQL in a socket buffer: IDENTIFIED BY '...', PASSWORD('...')


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
