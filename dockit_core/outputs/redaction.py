"""Secrets kept out of every output but the tracer's own .log: passwords on command lines, credential
headers in buffers shown by the calls file, user:password in URLs.

Decoded records are redacted by their decoders (decoders/redact.py names the secret headers); this
module covers what the core itself prints: command lines (summary, .ini, Dockerfile) and call arguments.
"""

from __future__ import annotations

import os
import re
import shlex

from decoders.redact import REDACTED, SECRET_HEADER_WORDS, SECRET_HEADERS, redact_sql, redact_url
from decoders.redis.commands import secret_arguments as redis_secret_arguments

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
_REDIS_CLIENTS = frozenset({"redis-cli", "valkey-cli", "keydb-cli", "redis-benchmark", "valkey-benchmark"})
# redis-cli's options that take a value: the command it sends (AUTH pw, CONFIG SET requirepass pw)
# begins at the first word that is neither an option nor such a value.
_REDIS_VALUED = frozenset(
    "-h -p -s -a -u -r -i -n -t -d -D -e --user --pass --cacert --cacertdir --cert --key --sni "
    "--tls-ciphers --tls-ciphersuites --show-pushes --pattern --count --quoted-pattern --intrinsic-latency "
    "--pipe-timeout --eval --rdb --functions-rdb".split()
)
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


def is_secret_variable(name: str) -> bool:
    """An environment variable whose value is a secret, by its name: MYSQL_PWD, PGPASSWORD,
    AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN, REDISCLI_AUTH... (PWD and OLDPWD are directories)."""
    return name.upper() not in _NOT_SECRET_VARIABLES and bool(_SECRET_VARIABLE.search(name))


_SECRET_VARIABLE = re.compile(r"PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|COOKIE|SESSION", re.I)
_NOT_SECRET_VARIABLES = frozenset({"PWD", "OLDPWD"})
_VARIABLE_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.+)", re.S)
# Programs that run the rest of their arguments as a command: `env MYSQL_PWD=x mariadb -pY`, `sudo -u
# bob psql ...`, `timeout 5 curl -u bob:pw ...`. Value: their options that take a value, and how many
# plain words come before the command (timeout's duration, taskset's mask, nice's none).
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "env": (frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}), 0),
    "sudo": (frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"}), 0),
    "doas": (frozenset({"-u", "-C"}), 0),
    "nohup": (frozenset(), 0),
    "setsid": (frozenset(), 0),
    "time": (frozenset({"-f", "--format", "-o", "--output"}), 0),
    "exec": (frozenset({"-a"}), 0),
    "command": (frozenset(), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p", "-P", "-u"}), 0),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0),
    "timeout": (frozenset({"-s", "--signal", "-k", "--kill-after"}), 1),
    "taskset": (frozenset(), 1),
    "chrt": (frozenset(), 1),
    "xargs": (frozenset({"-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s"}), 0),
}
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"})
_MAX_DEPTH = 16  # wrappers and shells inside each other: deeper than any real command line


def redact_argv(argv: list[str], depth: int = 0) -> list[str]:
    """The command line with its passwords replaced: `-pSECRET`, `--password=x`, `-u user:pass`,
    `MYSQL_PWD=x` assignments, and the same in the command a wrapper runs (`env`, `sudo`, `timeout`...)
    and in a shell's `-c` script (a script nested in scripts deeper than any real one is hidden whole:
    what cannot be read is not shown)."""
    result = list(argv)
    start = 0
    while start < len(argv):  # one program at a time: `sudo env X=1 timeout 5 mysql -p...`
        first = start
        while first < len(argv) and _VARIABLE_ASSIGNMENT.fullmatch(argv[first]):
            first += 1  # `MYSQL_PWD=x mariadb ...` in a script: the program comes after the assignments
        program = os.path.basename(argv[first]) if first < len(argv) else ""
        end = len(argv)
        if program in _WRAPPERS:
            end = min(end, _wrapped_command(argv, first, *_WRAPPERS[program]))
        result[start:end] = _redact_words(argv[start:end], program, first - start)
        if program in _REDIS_CLIENTS:
            _redact_redis_command(argv, result, first, end)
        if program in _SHELLS:
            script = _shell_script(argv, first)
            if script is not None:
                result[script] = _redact_script(argv[script], depth + 1) if depth < _MAX_DEPTH else REDACTED
        start = end
    return result


def _redact_words(argv: list[str], program: str, first: int) -> list[str]:
    """The rules for one program's own arguments (`first` is where the program is)."""
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
        if index > first:
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
            elif arg == "-a" and program in _REDIS_CLIENTS:  # redis-cli -a PASSWORD
                hide_next = True
            elif arg.startswith(("--user=", "--proxy-user=")):
                option, _, value = arg.partition("=")
                user, colon, _password = value.partition(":")
                arg = f"{option}={user}:{REDACTED}" if colon else arg
            elif arg.startswith("--password=") or _PASSWORD_OPTION.match(arg):
                arg = _PASSWORD_OPTION.sub(lambda m: m.group(1) + REDACTED, arg)
        assignment = _VARIABLE_ASSIGNMENT.fullmatch(arg) if "=" in arg else None
        if assignment is not None and is_secret_variable(assignment.group(1)):
            arg = f"{assignment.group(1)}={REDACTED}"
        arg = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}:{REDACTED}@", arg)
        arg = _SECRET_ASSIGNMENT.sub(lambda m: m.group(1) + REDACTED, arg)
        arg = redact_sql(redact_text(arg))  # `mariadb -e "CREATE USER u IDENTIFIED BY '...'"`
        result.append(arg)
    return result


def _redact_redis_command(argv: list[str], result: list[str], first: int, end: int) -> None:
    """`redis-cli -p 6380 AUTH pw`, `redis-cli CONFIG SET requirepass pw`: the command's secret
    arguments, by the Redis decoder's own rules."""
    index = first + 1
    while index < end and argv[index].startswith("-"):
        index += 2 if argv[index] in _REDIS_VALUED else 1
    words = [word.encode("utf-8", "surrogateescape") for word in argv[index:end]]
    for secret in redis_secret_arguments(words):
        result[index + secret] = REDACTED


def _wrapped_command(argv: list[str], first: int, valued: frozenset[str], words: int) -> int:
    """Where the command run by the wrapper at `first` starts: after its options (and their values),
    assignments (env's), and the plain words it takes first (timeout's duration)."""
    index = first + 1
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            index += 1
            break
        if arg in valued:
            index += 2
        elif arg.startswith("-") and arg != "-" or _VARIABLE_ASSIGNMENT.fullmatch(arg):
            index += 1
        else:
            break
    return index + words


def _shell_script(argv: list[str], first: int) -> int | None:
    """The index of a shell's `-c` script (`sh -c SCRIPT`, `bash -ec SCRIPT`, `busybox sh -c`)."""
    index = first + 1
    if os.path.basename(argv[first]) == "busybox":
        if index >= len(argv) or os.path.basename(argv[index]) not in _SHELLS:
            return None
        index += 1
    command_option = False
    while index < len(argv):
        arg = argv[index]
        if arg.startswith("-") and not arg.startswith("--") and len(arg) > 1:
            command_option = command_option or "c" in arg[1:]
        elif arg.startswith(("-", "+")):
            pass  # --login, +x
        else:
            return index if command_option else None
        index += 1
    return None


_OPERATOR = re.compile(r"[;&|()<>]+")


def _redact_script(script: str, depth: int) -> str:
    """A shell script with the secrets of each of its commands replaced where they stand, the rest of
    the text (quotes, `$VAR`, newlines) as it was."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:  # an unclosed quote: the words as they come
        tokens = script.split()
    commands: list[list[str]] = [[]]
    for token in tokens:
        if _OPERATOR.fullmatch(token):
            commands.append([])
        else:
            commands[-1].append(token)
    for words in commands:
        if not words:
            continue
        for original, cleaned in zip(words, redact_argv(words, depth), strict=True):
            if original != cleaned:
                script = _replace_secret(script, original, cleaned)
    return script


def _replace_secret(script: str, original: str, cleaned: str) -> str:
    """`script` with the secret part of the word `original` replaced as `cleaned` replaced it: the part
    between their common start and end, found after that start (`-p`, `MYSQL_PWD=`), a quote allowed
    between them. When it cannot be found as written (odd quoting), the script is hidden whole."""
    prefix = os.path.commonprefix([original, cleaned])
    rest, clean_rest = original[len(prefix) :], cleaned[len(prefix) :]
    suffix = os.path.commonprefix([rest[::-1], clean_rest[::-1]])[::-1]
    secret = rest[: len(rest) - len(suffix)]
    replacement = clean_rest[: len(clean_rest) - len(suffix)]
    if secret:
        before = re.escape(prefix) if prefix else r"(?:(?<=[\s'\"=:])|^)"
        pattern = re.compile(before + r"(['\"]?)" + re.escape(secret))
        replaced, count = pattern.subn(lambda m: prefix + m.group(1) + replacement, script)
        if count:
            return replaced
    return REDACTED


def redact_text(text: str) -> str:
    """Credential header values (Authorization, Cookie...), URL passwords and secret query parameters
    (`?access_token=`) inside free text."""
    text = redact_url(text)
    if ":" not in text:
        return text
    text = _SECRET_HEADER_LINE.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)


def redact_call_arguments(name: str, text: str) -> str:
    """A call's argument text as the calls file shows it: credential headers, `password=`-like settings
    (a --defaults-file read) and MySQL password hashes in buffers, and passwords in an execve's argv,
    replaced."""
    if name in ("execve", "execveat"):
        text = _redact_execve_argv(text)
    text = redact_sql(redact_text(text))  # SQL in a socket buffer: IDENTIFIED BY '...', PASSWORD('...')
    if "=" in text or ":" in text:
        text = _SECRET_SETTING.sub(lambda m: m.group(1) + REDACTED, text)
    if "*" in text:
        text = _MYSQL_HASH.sub(REDACTED, text)
    return text


# `password=x`, `api_key: x` in a buffer as strace shows it (a line ends at a literal `\n`): a client's
# option file, a .env, a form. The value goes up to the end of its line, a quote or a separator.
_SECRET_SETTING = re.compile(
    r"(?i)((?:^|(?<=\\n)|(?<=\\t)|(?<=[\s\"'{,;&?]))(?:export\s+)?[\w.-]*"
    r"(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)[\w.-]*[ \t]*[=:][ \t]*)"
    r"(?=[^\s\\\"&;,])(?:[^\\\"&;,\s]|\\(?![nrt\"]))+"
)
# A MySQL/MariaDB native password hash (`SELECT authentication_string`, the value of PASSWORD('x')).
_MYSQL_HASH = re.compile(r"\*[0-9A-F]{40}(?![0-9A-Fa-f])")


def _redact_execve_argv(text: str) -> str:
    """execve's argv array written again with its secrets replaced, when it has any."""
    from dockit_core.ingest.args import parse_string_array
    from dockit_core.ingest.cstring import parse_quoted

    start = text.find("[")
    if start < 0:
        return text
    argv = parse_string_array(text[start:])
    cleaned = redact_argv(argv)
    if cleaned == argv:
        return text
    # Where the array ends: after its last literal (or the text's end, when the line was cut).
    position = start + 1
    end = len(text)
    while True:
        quote = text.find('"', position)
        close = text.find("]", position)
        if close >= 0 and (quote < 0 or close < quote):
            end = close + 1
            break
        if quote < 0:
            break
        parsed = parse_quoted(text, quote)
        if parsed is None:
            break
        position = parsed[2]
    return text[:start] + "[" + ", ".join(_quoted(arg) for arg in cleaned) + "]" + text[end:]


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\v": "\\v", "\f": "\\f"}


def _quoted(value: str) -> str:
    """An argument as strace writes it: C escapes, other control characters in octal."""
    out = []
    for char in value:
        escaped = _ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\{ord(char):o}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
