"""`-D`: a Dockerfile that rebuilds what the traced program used, with its build context beside it.

What goes in, and why:
- FROM the traced host's distribution (`debian:12`, from /etc/os-release, recorded in the .ini). A log
  without it (old captures) gets a guess, said as such in a comment.
- Files the program read, executed or examined (stat) and that still exist here as regular files, except
  kernel files, devices, temporary files, files it created, deleted, renamed or wrote (its outputs), and
  files that the base image or Docker make themselves (/etc/hosts, /etc/passwd, /etc/ld.so.cache...):
  - owned by a distribution package -> one `apt-get install` (or `dnf install`) line, sorted;
  - listed in a pip distribution's RECORD, when the Python that runs them comes from a package ->
    one `pip install name==version` line (with that Python, and its distribution's pip package);
  - anything else -> copied into `rootfs/` in the build context, keeping its absolute path, and added
    with COPY, whatever its folder (a program kept under /tmp needs its files; what the run created or
    deleted itself is its output, and /run, /dev/shm are the host's runtime state).
    `__pycache__/*.pyc` files whose source is there are left out: Python remakes them. Files holding
    credentials are never copied, whatever the path spelling (credentials.py says how they are told):
    a comment names each, with why, to be mounted at run time.
  Package and pip lookups and copies are made only when the trace was recorded on this machine (a live
  run, or a replay whose .ini names this host and machine), or with --copy-from-host: a log from
  elsewhere, or without .ini, lists the files it needed in comments instead (this machine's files are
  not that machine's). The build context is written only inside itself (context.py): paths are
  normalised, and a symbolic link inside it is refused, never followed.
- WORKDIR: the traced current directory. ENV: what the program plausibly needs of the environment it ran
  with (search paths, locale, runtimes' and clients' settings, variables named after the program), with
  the credentials inside values redacted; the other names are listed in a comment.
- EXPOSE: the ports the program listened on (TCP `listen`, UDP bound and read from without connecting),
  never the ports it connected to.
- CMD: the traced command line, in JSON exec form, its secrets replaced as in the .ini (`env API_TOKEN=...`,
  `-pSECRET`), with a note saying so.
- An executed script's `#!` interpreter is used too: the kernel starts it with no open in the trace.
- PEM files are credentials only when they hold a private key; a pip distribution's files never are.
- Paths in COPY and WORKDIR are escaped for Docker's lexer, which expands `$NAME` and takes out quotes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import shlex
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field

from dockit_core.model import Model
from dockit_core.model.categories import DEVICES, KERNEL_FILES
from dockit_core.outputs.docker.context import BuildContext, UnsafePath
from dockit_core.outputs.docker.credentials import credential_reason, normal_path
from dockit_core.outputs.docker.packages import PackageOwners, PipDistributions, family, reached_through_link
from dockit_core.outputs.ini import environment_parts
from dockit_core.outputs.redaction import REDACTED, redact_argv
from dockit_core.outputs.summary.objects import RunContext, machine_digest, read_os_release

DEFAULT_IMAGE = "debian:stable-slim"
MAX_COPY_LINES = 60  # beyond this many destination folders, one `COPY rootfs/ /` (image layers are few)
MAX_LISTED = 200  # files named in comments
# Made by Docker at run time, by the base image, or from the installed packages: copying the traced
# host's would be wrong (or would leak its accounts).
GENERATED = frozenset(
    {
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
        "/etc/mtab",
        "/etc/ld.so.cache",
        "/etc/ld.so.preload",
        "/etc/passwd",
        "/etc/group",
        "/etc/shadow",
        "/etc/gshadow",
        "/etc/localtime",
        "/etc/timezone",
        "/etc/machine-id",
        "/usr/lib/locale/locale-archive",
        "/var/lib/dbus/machine-id",
    }
)
# Set by a shell, a terminal or a login for itself, or by Docker: not part of the program's environment.
NOISY_ENV = frozenset(
    {
        "_",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "HOSTNAME",
        "TERM",
        "TERM_PROGRAM",
        "TERM_PROGRAM_VERSION",
        "COLORTERM",
        "COLUMNS",
        "LINES",
        "LS_COLORS",
        "PS1",
        "PS2",
        "PROMPT_COMMAND",
        "DISPLAY",
        "WINDOWID",
        "MAIL",
        "SSH_CLIENT",
        "SSH_CONNECTION",
        "SSH_TTY",
        "SSH_AGENT_PID",
        "SSH_AUTH_SOCK",
        "XDG_RUNTIME_DIR",
        "XDG_SESSION_ID",
        "XDG_SESSION_TYPE",
        "XDG_SESSION_CLASS",
        "DBUS_SESSION_BUS_ADDRESS",
        "TMUX",
        "TMUX_PANE",
        "STY",
        "WINDOW",
        "HISTFILE",
        "LESSOPEN",
        "LESSCLOSE",
    }
)
# What a program plausibly needs of its environment (see image_environment): by name, and by prefix.
NEEDED_ENV = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "LD_LIBRARY_PATH",
        "PYTHONPATH", "PYTHONHOME", "PYTHONIOENCODING", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE",
        "PYTHONUTF8", "VIRTUAL_ENV", "PERL5LIB", "PERLLIB", "RUBYLIB", "GEM_HOME", "GEM_PATH", "NODE_PATH",
        "NODE_ENV", "NODE_OPTIONS", "JAVA_HOME", "JAVA_OPTS", "CLASSPATH", "GOPATH", "GOROOT", "CARGO_HOME",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY",
        "NO_PROXY", "ALL_PROXY", "FTP_PROXY", "ORACLE_HOME", "ORACLE_SID", "TNS_ADMIN", "NLS_LANG",
        "DATABASE_URL", "REDIS_URL", "AMQP_URL", "BROKER_URL", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
        "XDG_CACHE_HOME", "XDG_CONFIG_DIRS", "XDG_DATA_DIRS", "TERMINFO", "MAGIC", "GCONV_PATH", "LOCPATH",
    }
)  # fmt: skip
NEEDED_ENV_PREFIXES = ("LC_", "PG", "MYSQL_", "MARIADB_", "REDIS", "MONGO", "ORA_", "KAFKA_", "RABBITMQ_")
# Paths a Dockerfile cannot name on one line: they are listed, escaped, never copied.
_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")
# Runtime state of the host's services, made anew in a container: /tmp and /var/tmp are not (a program
# kept there needs its files copied like any other's).
RUNTIME_FOLDERS = ("/run/", "/var/run/", "/dev/shm/", "/proc/", "/sys/")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PYTHON = re.compile(r"/python\d(\.\d+)?$")


@dataclass
class ImagePlan:
    """What the Dockerfile will say: decided from the model, before anything is written."""

    base: str
    base_note: str = ""
    packages: list[str] = field(default_factory=list)
    manager: str | None = None  # dpkg or rpm: how to install `packages`
    pip: list[str] = field(default_factory=list)  # name==version
    pip_python: str | None = None
    venv: str | None = None  # the virtual environment the packaged Python ran in: made again in the image
    venv_options: str = ""
    copies: list[str] = field(default_factory=list)  # absolute paths to copy from this machine
    links: list[tuple[str, str]] = field(
        default_factory=list
    )  # (path, target): unowned links to packaged files
    missing: list[str] = field(default_factory=list)  # used, unpackaged, and no longer here
    not_looked_up: list[str] = field(default_factory=list)  # replay from another machine
    secrets: list[tuple[str, str]] = field(default_factory=list)  # files with credentials, and why
    unsafe: list[str] = field(default_factory=list)  # paths a Dockerfile cannot name (control characters)
    environment_left: list[str] = field(default_factory=list)  # names left out of ENV
    pip_copied: list[str] = field(default_factory=list)  # pip distributions copied with their Python
    workdir: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    exposed: list[str] = field(default_factory=list)
    expose_notes: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def write_dockerfile(
    model: Model,
    context: RunContext,
    docker_dir: str,
    environment: dict[str, str],
    copy_from_host: bool = False,
) -> str:
    """Plan the image, copy the unpackaged files into `docker_dir/rootfs`, write the Dockerfile; its path.
    `copy_from_host`: the user says this machine's files are the traced machine's, although the log
    does not show it was recorded here (--copy-from-host)."""
    plan = plan_image(model, context, environment, copy_from_host=copy_from_host)
    build = BuildContext(docker_dir)
    try:
        build.reset_rootfs()
        copied: list[str] = []
        for path in plan.copies:
            try:
                build.copy_in(path)
            except UnsafePath as error:
                plan.notes.append(f"not copied: {error}")
                continue
            except OSError as error:
                plan.notes.append(f"could not copy {path}: {error.strerror or error}")
                continue
            copied.append(path)
        plan.copies = copied
        return build.write_file("Dockerfile", render(plan, context))
    finally:
        build.close()


# -- planning ---------------------------------------------------------------------------------------------
def plan_image(
    model: Model,
    context: RunContext,
    environment: dict[str, str],
    owners: PackageOwners | None = None,
    pips: PipDistributions | None = None,
    copy_from_host: bool = False,
) -> ImagePlan:
    here = copy_from_host or recorded_here(context)
    if copy_from_host and not context.os_release:
        context = dataclasses.replace(context, os_release=read_os_release())  # the user says: this machine
    base, base_note = base_image(context, model)
    plan = ImagePlan(base=base, base_note=base_note)
    used, plan.unsafe = used_files(model)
    executable = _command_executable(model, context) if here else None
    if executable and executable not in used:
        used = sorted([*used, executable])
    if here:
        # the kernel starts a script's interpreter without an open the trace would show
        used = sorted(set(used) | set(script_interpreters(model, used)))
    root = model.processes.get(model.root_pid) if model.root_pid is not None else None
    if root is not None and not root.seen_from_start:
        plan.notes.append(
            "attached to a running process: the files it opened before (its libraries...) are not known"
        )
    if not here:
        plan.not_looked_up = used
        plan.secrets = [(p, why) for p in used if (why := credential_reason(p, content=False))]
        plan.notes.append(
            f"the log does not show it was recorded on this machine ({not_here_reason(context)}): the files"
            " it used are listed, not looked up or copied (--copy-from-host copies them from this one)"
        )
    else:
        existing = [p for p in used if os.path.isfile(p)]
        plan.missing = [p for p in used if not os.path.exists(p)]
        existing = [p for p in existing if not _regenerated_bytecode(p)]
        manager = family(base) if base == context.os_release else None
        owners = owners or PackageOwners(manager)
        plan.manager = owners.manager
        if manager and owners.manager is None:
            plan.notes.append(f"no {manager} here: packages not looked up, files copied instead")
        found = owners.owners(existing)
        pips = pips or PipDistributions()
        python = _packaged_python(model, found, owners)
        packages = {pkg for pkg in found.values() if pkg}
        # a link's package and its target's: /usr/bin/python3 (python3-minimal) -> python3.11 (python3.11-minimal)
        targets = {os.path.realpath(p) for p in existing if os.path.islink(p)} - set(found)
        packages |= {pkg for pkg in owners.owners(sorted(targets)).values() if pkg}
        venv = _venv(existing, python)
        pip: dict[str, str] = {}
        copied_with_python: dict[str, str] = {}
        for path in existing:
            if (
                venv is not None
                and path.startswith(venv[0] + "/")
                and (path == venv[0] + "/pyvenv.cfg" or path.startswith(venv[0] + "/bin/"))
            ):
                continue  # `python3 -m venv` makes them again
            if found.get(path):
                matched = owners.matched.get(path, path)
                if os.path.islink(path) and reached_through_link(path, matched):
                    plan.links.append((path, os.path.realpath(path)))
                continue
            dist = pips.owner(path)
            if dist is not None:
                if python is not None:
                    pip[dist[0]] = dist[1]
                    continue
                copied_with_python[dist[0]] = dist[1]
            # a file of a pip distribution's RECORD is published code or data (botocore/credentials.py,
            # docker/credentials/, certifi's cacert.pem): the program cannot import without it
            why = credential_reason(path) if dist is None else None
            if why is not None:
                plan.secrets.append((path, why))
                continue
            plan.copies.append(path)
        if pip:
            plan.pip = [
                f"{name}=={version}" for name, version in sorted(pip.items(), key=lambda i: i[0].lower())
            ]
            plan.pip_python = python
            if venv is not None:
                plan.venv, plan.venv_options = venv
                if plan.manager == "dpkg":
                    packages.add("python3-venv")
            else:
                packages.add("python3-pip")
        plan.pip_copied = [f"{n}=={v}" for n, v in sorted(copied_with_python.items())]
        plan.packages = sorted(packages)
    plan.workdir = _workdir(model, context)
    if plan.workdir and _CONTROL.search(plan.workdir):
        plan.notes.append(f"no WORKDIR: the traced directory's name holds a control character ({_one_line(plan.workdir)})")
        plan.workdir = None
    plan.environment, plan.environment_left = image_environment(environment, _program_names(model, context))
    plan.exposed, plan.expose_notes = exposed_ports(model)
    command = list(context.command) or _root_argv(model)
    plan.command = redact_argv(command)
    if plan.command != command:
        plan.notes.append(
            f"the command line held secrets, replaced by {REDACTED} in CMD: give them at run time"
        )
    return plan


def script_interpreters(model: Model, paths: Iterable[str]) -> list[str]:
    """The `#!` interpreters of the executed scripts among `paths` (`/bin/sh`, `/usr/bin/gawk`...)."""
    found = []
    for path in paths:
        node = model.files.get(path)
        if node is None or not any(a.executed for a in node.accesses.values()):
            continue
        try:
            with open(path, "rb") as stream:
                head = stream.read(512)
        except (OSError, ValueError):  # ValueError: a NUL in a damaged log's path
            continue
        if not head.startswith(b"#!"):
            continue
        words = head[2:].split(b"\n", 1)[0].split()
        if words and words[0].startswith(b"/"):
            found.append(os.fsdecode(words[0]))
    return found


def recorded_here(context: RunContext) -> bool:
    """Whether this machine's files are the traced machine's: a live run, or a replay whose .ini names
    this host and this machine (a log without .ini, or from another machine, is not)."""
    return not not_here_reason(context)


def not_here_reason(context: RunContext) -> str:
    """Why a replayed log is not known to be from this machine ("" when it is)."""
    if not context.hostname:
        return "no .ini names its host"
    if context.hostname != platform.node():
        return f"recorded on {context.hostname} ({context.os_release or 'distribution unknown'})"
    if not context.machine:
        return "its .ini has no machine id"
    if context.machine != machine_digest():
        return f"recorded on another machine named {context.hostname}"
    if context.os_release and context.os_release != read_os_release():
        return f"recorded on {context.os_release}"
    return ""


def base_image(context: RunContext, model: Model) -> tuple[str, str]:
    if context.os_release:
        return context.os_release, "the traced host's distribution (/etc/os-release)"
    lib64 = any((p.startswith(("/usr/lib64/", "/lib64/")) and "/ld-linux" not in p) for p in model.files)
    if lib64:
        return "fedora", "GUESSED: the trace does not name its distribution; /usr/lib64 suggests Fedora/RHEL"
    return DEFAULT_IMAGE, "GUESSED: the trace does not name its distribution"


def used_files(model: Model) -> tuple[list[str], list[str]]:
    """(absolute paths the program needed as they were: read, executed or examined, and not its
    output; paths left out because a Dockerfile cannot name them: a control character). Paths are
    normalised as the kernel resolves them (`/etc/./shadow` is `/etc/shadow`)."""
    used: set[str] = set()
    unsafe: set[str] = set()
    for path, node in model.files.items():
        if not path.startswith("/") or node.category in (KERNEL_FILES, DEVICES):
            continue
        path = normal_path(path)
        if path in GENERATED or path.startswith(RUNTIME_FOLDERS):
            continue
        accesses = node.accesses.values()
        if any(a.created or a.deleted or a.renamed_to or a.renamed_from or a.writes for a in accesses):
            continue
        if any(a.opens or a.reads or a.executed or a.metadata for a in accesses):
            (unsafe if _CONTROL.search(path) else used).add(path)
    return sorted(used), sorted(unsafe)


def _regenerated_bytecode(path: str) -> bool:
    """`x/__pycache__/m.cpython-311.pyc` when `x/m.py` exists: Python compiles it again."""
    folder, name = os.path.split(path)
    if os.path.basename(folder) != "__pycache__" or not name.endswith(".pyc"):
        return False
    source = os.path.join(os.path.dirname(folder), name.split(".")[0] + ".py")
    return os.path.isfile(source)


def _venv(existing: list[str], python: str | None) -> tuple[str, str] | None:
    """(root, options) of the virtual environment that `python` ran in, from the pyvenv.cfg it read."""
    if python is None:
        return None
    root = os.path.dirname(os.path.dirname(python))
    config = root + "/pyvenv.cfg"
    if config not in existing:
        return None
    options = ""
    try:
        with open(config, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                key, _, value = line.partition("=")
                if key.strip() == "include-system-site-packages" and value.strip().lower() == "true":
                    options = " --system-site-packages"
    except OSError:
        pass
    return root, options


def _packaged_python(model: Model, found: dict[str, str | None], owners: PackageOwners) -> str | None:
    """The executed Python that comes from a package (so pip can be installed beside it), if any."""
    for path, node in model.files.items():
        if _PYTHON.search(path) and any(a.executed for a in node.accesses.values()):
            owner = found.get(path)
            if owner is None and path not in found:
                owner = owners.owners([path]).get(path)
            if owner:
                return path
    return None


def _workdir(model: Model, context: RunContext) -> str | None:
    root = model.processes.get(model.root_pid) if model.root_pid is not None else None
    return context.cwd or (root.cwd if root is not None else None)


def _command_executable(model: Model, context: RunContext) -> str | None:
    """The traced program's file, even when the trace never saw it executed (attach)."""
    root = model.processes.get(model.root_pid) if model.root_pid is not None else None
    if root is not None and root.executable and root.executable.startswith("/"):
        return root.executable
    if not context.command:
        return None
    program = context.command[0]
    if "/" not in program:
        return shutil.which(program)
    return os.path.normpath(os.path.join(context.cwd or "/", program))


def _root_argv(model: Model) -> list[str]:
    root = model.processes.get(model.root_pid) if model.root_pid is not None else None
    return list(root.argv) if root is not None else []


def image_environment(
    environment: dict[str, str], programs: Iterable[str] = ()
) -> tuple[dict[str, str], list[str]]:
    """(the environment for ENV, the names left out). ENV keeps what a program plausibly needs: the
    search paths, locale and time zone, the language runtimes' and the database and proxy clients'
    settings, and the variables named after one of the traced programs (`MYAPP_CONFIG` for `myapp`);
    secrets (by name, and inside URLs) and control characters are out in any case. The rest (the
    tracing host's shell: PYENV_*, CONTAINER_NAME, PIP_FIND_LINKS...) is named in a comment."""
    safe, left_out = environment_parts(environment)
    prefixes = tuple(f"{name.upper().replace('-', '_')}_" for name in programs if len(name) >= 3)
    kept = {}
    left = sorted(left_out)
    for name, value in sorted(safe.items()):
        upper = name.upper()
        if upper in NEEDED_ENV or upper.startswith(NEEDED_ENV_PREFIXES) or (prefixes and upper.startswith(prefixes)):
            if _ENV_NAME.match(name):
                kept[name] = value
                continue
        if name not in NOISY_ENV:
            left.append(name)
    return kept, left


def _program_names(model: Model, context: RunContext) -> list[str]:
    """The names of the programs the trace ran (`myapp` for /opt/myapp/bin/myapp)."""
    names = {os.path.basename(context.command[0])} if context.command else set()
    for path, node in model.files.items():
        if any(a.executed for a in node.accesses.values()):
            names.add(os.path.basename(path))
    return sorted(n for n in names if n)


def exposed_ports(model: Model) -> tuple[list[str], list[str]]:
    """`8000`, `53/udp`: ports listened on; and notes on those bound to the loopback only."""
    ports: dict[str, None] = {}
    notes: list[str] = []
    for socket in model.sockets.values():
        port = socket.local_port
        if not port:
            continue
        if socket.kind in ("tcp", "tcp6") and socket.listening:
            spec = str(port)
        elif socket.kind in ("udp", "udp6") and not socket.remote and socket.bytes_in and not socket.accepted:
            spec = f"{port}/udp"
        else:
            continue
        if spec in ports:
            continue
        ports[spec] = None
        host = (socket.local or "").rsplit(":", 1)[0].strip("[]")
        if host.startswith("127.") or host == "::1":
            notes.append(
                f"port {spec} was bound to {host}: from outside the container it answers only if the"
                " program listens on all addresses (0.0.0.0) there"
            )
    return sorted(ports, key=lambda s: (int(s.split("/")[0]), s)), notes


# -- rendering --------------------------------------------------------------------------------------------
def render(plan: ImagePlan, context: RunContext) -> str:
    lines = [
        "# Generated by dockit from a trace of: " + _one_line(shlex.join(plan.command)),
        "# "
        + _one_line(
            f"Traced on {context.hostname or '?'} ({context.os_release or 'distribution unknown'}),"
            f" {context.date or 'date unknown'}."
        ),
        f"FROM {plan.base}",
        f"# base image: {plan.base_note}",
    ]
    lines += [f"# note: {_one_line(note)}" for note in plan.notes]
    if plan.packages:
        lines.append("")
        lines.append("# distribution packages owning the files the program used")
        lines.append(install_line(plan.manager, plan.packages))
    if plan.links:
        lines.append("")
        lines.append("# symbolic links the program went through to packaged files (no package makes them)")
        lines.append(link_line(plan.links))
    if plan.pip:
        python = plan.pip_python or "python3"
        lines.append("")
        lines.append("# Python distributions installed by pip that the program imported")
        if plan.venv:
            system = os.path.realpath(python) if os.path.exists(python) else "python3"
            lines.append(
                f"RUN {system} -m venv{plan.venv_options} {shlex.quote(plan.venv)} \\\n"
                f"    && {shlex.quote(plan.venv)}/bin/python -m pip install --no-cache-dir "
                + " ".join(plan.pip)
            )
        else:
            lines.append(
                f"RUN PIP_BREAK_SYSTEM_PACKAGES=1 {python} -m pip install --no-cache-dir "
                + " ".join(plan.pip)
            )
    if plan.copies:
        lines.append("")
        lines.append("# files the program used that no package owns, copied from the traced machine")
        if plan.pip_copied:
            lines.append(
                "# (pip distributions copied with their unpackaged Python: "
                + ", ".join(plan.pip_copied)
                + ")"
            )
        lines += copy_lines(plan.copies)
    if plan.secrets:
        lines.append("")
        lines.append("# files with credentials, NOT copied into the image (mount them at run time):")
        lines += _listed([f"{path}  ({why})" for path, why in plan.secrets])
    if plan.unsafe:
        lines.append("")
        lines.append("# files whose names a Dockerfile cannot hold (a control character), not copied:")
        lines += _listed(plan.unsafe)
    if plan.missing:
        lines.append("")
        lines.append("# used by the program but no longer on this machine (not copied):")
        lines += _listed(plan.missing)
    if plan.not_looked_up:
        lines.append("")
        lines.append("# files the program used (install or copy them; no lookup was possible here):")
        lines += _listed(plan.not_looked_up)
    if plan.environment:
        lines.append("")
        lines.append("# the environment the program ran with that it plausibly needs (secrets left out)")
        lines.append(env_line(plan.environment))
    if plan.environment_left:
        lines.append("")
        lines.append("# left out of ENV (secrets, and variables of the tracing host's shell): " + _one_line(
            ", ".join(plan.environment_left[:MAX_LISTED]) + (" ..." if len(plan.environment_left) > MAX_LISTED else "")))
    if plan.workdir:
        lines.append("")
        lines.append(f"WORKDIR {_word(plan.workdir)}")
    if plan.exposed:
        lines.append("")
        lines += [f"# {note}" for note in plan.expose_notes]
        lines.append("EXPOSE " + " ".join(plan.exposed))
    lines.append("")
    lines.append("CMD " + json.dumps(plan.command, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def install_line(manager: str | None, packages: list[str]) -> str:
    joined = " \\\n        ".join(packages)
    if manager == "rpm":
        return f"RUN dnf install -y \\\n        {joined} \\\n    && dnf clean all"
    return (
        "RUN apt-get update \\\n    && apt-get install -y --no-install-recommends \\\n"
        f"        {joined} \\\n    && rm -rf /var/lib/apt/lists/*"
    )


def link_line(links: list[tuple[str, str]]) -> str:
    steps = [
        f"mkdir -p {shlex.quote(os.path.dirname(path))} && ln -sf {shlex.quote(target)} {shlex.quote(path)}"
        for path, target in links
    ]
    return "RUN " + " \\\n    && ".join(steps)


def copy_lines(paths: Iterable[str]) -> list[str]:
    """One COPY per destination folder (`COPY rootfs/a/x rootfs/a/y /a/`), or all of rootfs at once."""
    folders: dict[str, list[str]] = {}
    for path in sorted(paths):
        folders.setdefault(os.path.dirname(path), []).append(path)
    if len(folders) > MAX_COPY_LINES:
        return _listed(sorted(paths)) + ["COPY rootfs/ /"]
    lines = []
    for folder, files in folders.items():
        sources = ["rootfs" + path for path in files]
        destination = folder.rstrip("/") + "/"
        arguments = [_word(a) for a in (*sources, destination)]
        if any(_needs_json(a) for a in arguments):
            lines.append("COPY " + json.dumps(arguments, ensure_ascii=False))
        else:
            lines.append("COPY " + " ".join(arguments))
    return lines


def env_line(environment: dict[str, str]) -> str:
    pairs = [f"{key}={_env_quote(value)}" for key, value in environment.items()]
    return "ENV " + " \\\n    ".join(pairs)


def _env_quote(value: str) -> str:
    """A double-quoted Dockerfile value: `\\`, `"` and `$` escaped (ENV substitutes variables)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def _needs_json(text: str) -> bool:
    return any(c.isspace() for c in text) or '"' in text or "\\" in text or text.startswith("[")


def _word(text: str) -> str:
    """A path as one Dockerfile word: COPY (in either form) and WORKDIR go through Docker's shell-like
    lexer, which expands `$NAME` and takes out quotes and backslashes; a backslash before each of them
    (and before blanks) keeps the path as it is."""
    return _SPECIAL.sub(lambda m: "\\" + m.group(0), text)


_SPECIAL = re.compile(r"[\\$\"'\s]")


def _one_line(text: str) -> str:
    """Text for a comment: a line break in it (or any control character) would start a Dockerfile
    instruction, or hide one from whoever reads it."""
    text = text.replace("\\", "\\\\")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 256 else f"\\u{ord(m.group(0)):04x}", text)


def _listed(paths: list[str]) -> list[str]:
    lines = [f"#   {_one_line(p)}" for p in paths[:MAX_LISTED]]
    if len(paths) > MAX_LISTED:
        lines.append(f"#   ... and {len(paths) - MAX_LISTED} more")
    return lines
