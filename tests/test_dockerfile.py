"""`-D`: real programs traced live here, their Dockerfiles read back with dockerfile-parse, line by line.

There is no Docker engine on this machine: the checks are what a build would need (every COPY source in
the build context, the right base image, packages that exist) and what the brief promises (CMD is the
command exactly, EXPOSE only the ports listened on, no secret in ENV).

The programs run in a folder outside /tmp: dockit leaves temporary files out of images on purpose.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
import zipfile
from base64 import urlsafe_b64encode
from hashlib import sha256
from pathlib import Path

import pytest

from dockit_core.outputs.docker.packages import PackageOwners, parse_dpkg_search
from dockit_core.outputs.summary.objects import read_os_release

dockerfile_parse = pytest.importorskip("dockerfile_parse")

REPO = Path(__file__).resolve().parents[1]
SURVOL = REPO.parent / "shared/captures/survol"
DEBIAN_PYTHON = "/usr/bin/python3"
TEMPORARY = ("/tmp/", "/var/tmp/", "/run/", "/dev/shm/")

pytestmark = [
    pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed"),
]
on_debian = pytest.mark.skipif(
    shutil.which("dpkg-query") is None or not read_os_release().startswith("debian:"),
    reason="the package expectations are Debian's",
)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder outside the temporary trees (under build/, ignored by git), removed afterwards."""
    base = REPO / "build" / "test-dockerfile"
    if str(base).startswith(TEMPORARY):
        base = Path.home() / ".cache" / "dockit-tests"
    folder = base / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def package_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def trace(work: Path, *command: str, env: dict[str, str] | None = None) -> tuple[Path, subprocess.Popen]:
    """Start `dockit -D -l work/p COMMAND`; the caller waits."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dockit_core.cli", "-D", "-l", str(work / "p"), *command],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    return work, process


def finish(work: Path, process: subprocess.Popen) -> tuple[Path, dockerfile_parse.DockerfileParser, str]:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    dockerfiles = list(work.glob("p.strace.*.docker/Dockerfile"))
    assert len(dockerfiles) == 1, err
    path = dockerfiles[0]
    assert f"wrote {path.relative_to(work)}" in err or f"wrote {path}" in err
    return path, dockerfile_parse.DockerfileParser(path=str(path)), out


def run(work: Path, *command: str) -> tuple[Path, dockerfile_parse.DockerfileParser, str]:
    return finish(*trace(work, *command))


def instructions(parsed: dockerfile_parse.DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in parsed.structure if i["instruction"] == name]


def installed(parsed: dockerfile_parse.DockerfileParser) -> list[str]:
    for value in instructions(parsed, "RUN"):
        if "apt-get install" in value:
            words = value.split()
            start = words.index("--no-install-recommends") + 1
            return words[start : words.index("&&", start)]
    return []


def copies(path: Path, parsed: dockerfile_parse.DockerfileParser) -> dict[str, str]:
    """{destination path: source in the context}; asserts that every source exists in the context."""
    context = path.parent
    found: dict[str, str] = {}
    for value in instructions(parsed, "COPY"):
        parts = json.loads(value) if value.startswith("[") else value.split()
        *sources, destination = parts
        for source in sources:
            assert (context / source).is_file(), f"COPY source {source} is not in the build context"
            assert source.startswith("rootfs/")
            target = destination + os.path.basename(source) if destination.endswith("/") else destination
            assert "/" + source.removeprefix("rootfs/") == target  # the absolute layout is kept
            found[target] = source
    return found


def common_checks(
    path: Path, parsed: dockerfile_parse.DockerfileParser, command: list[str], cwd: Path
) -> None:
    assert parsed.baseimage == read_os_release()
    known = {"COMMENT", "FROM", "RUN", "COPY", "ENV", "WORKDIR", "EXPOSE", "CMD"}
    assert {i["instruction"] for i in parsed.structure} <= known
    assert [i["instruction"] for i in parsed.structure if i["instruction"] == "FROM"] == ["FROM"]
    assert instructions(parsed, "CMD") == [json.dumps(command)]
    assert instructions(parsed, "WORKDIR") == [str(cwd)]
    env = parsed.envs
    assert "PWD" not in env and "SHLVL" not in env and "OLDPWD" not in env
    assert not [k for k in env if re.search(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|COOKIE", k, re.I)]
    if "PATH" in os.environ:
        assert env.get("PATH") == os.environ["PATH"]
    for destination, source in copies(path, parsed).items():
        assert not destination.startswith(("/proc/", "/sys/", "/dev/", *TEMPORARY))
        assert (path.parent / source).read_bytes() == Path(destination).read_bytes()
    packages = installed(parsed)
    assert packages == sorted(set(packages))


def dpkg_owns(path: str) -> bool:
    return subprocess.run(["dpkg-query", "-S", path], capture_output=True).returncode == 0


def dpkg_knows(package: str) -> bool:
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", package], capture_output=True, text=True)
    return done.stdout.endswith("installed")


# -- the programs ---------------------------------------------------------------------------------------
@on_debian
def test_curl_against_a_local_server(work: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    (work / "www").mkdir()
    (work / "www" / "index.html").write_text("<p>hi</p>\n")
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(work / "www")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = int(re.search(r"port (\d+)", server.stdout.readline()).group(1))  # type: ignore[union-attr]
        command = ["curl", "-s", f"http://127.0.0.1:{port}/index.html"]
        path, parsed, out = run(work, *command)
    finally:
        server.terminate()
        server.wait(10)
    assert out == "<p>hi</p>\n"
    common_checks(path, parsed, command, work)
    packages = installed(parsed)
    # curl's program, its library and the C library, all Debian's
    assert {"curl", "libcurl4", "libc6"} <= set(packages)
    assert all(dpkg_knows(p) for p in packages)
    assert instructions(parsed, "EXPOSE") == []  # it connected to a port; it listened on none
    # nothing of curl itself is copied: what is copied is unowned configuration, such as nsswitch.conf
    assert not [d for d in copies(path, parsed) if dpkg_owns(d)]


@on_debian
@pytest.mark.skipif(not os.path.exists(DEBIAN_PYTHON), reason="no Debian python3")
def test_python_script_with_a_module_and_a_config_file(work: Path) -> None:
    """Debian's python3: the interpreter is a package; the script, its module and its config are copied."""
    (work / "app.ini").write_text("[app]\nname = dockit\n")
    (work / "helper.py").write_text("GREETING = 'hello'\n")
    (work / "tls.key").write_text("not a real key\n")
    (work / "main.py").write_text(
        "import configparser\nimport helper\nopen('tls.key').read()\n"
        "config = configparser.ConfigParser()\nconfig.read('app.ini')\n"
        "print(helper.GREETING, config['app']['name'])\n"
    )
    command = [DEBIAN_PYTHON, "main.py"]
    path, parsed, out = run(work, *command)
    assert out == "hello dockit\n"
    common_checks(path, parsed, command, work)
    packages = set(installed(parsed))
    assert {"python3.11-minimal", "libpython3.11-minimal", "libc6"} <= packages
    copied = copies(path, parsed)
    for name in ("main.py", "helper.py", "app.ini"):
        assert str(work / name) in copied
    # a key file is never put into an image: named in a comment instead
    assert str(work / "tls.key") not in copied
    assert not (path.parent / "rootfs" / str(work / "tls.key").lstrip("/")).exists()
    assert f"#   {work / 'tls.key'}" in path.read_text().split("NOT copied")[1]
    assert not [d for d in copied if d.startswith("/usr/lib/python3.11/")]  # the stdlib: from packages
    for destination in copied:  # what is copied, dpkg does not know (the machine's own .pth files...)
        assert not dpkg_owns(destination), destination
    assert not [d for d in copied if d.endswith(".pyc")]  # remade by Python from the sources


@on_debian
@pytest.mark.skipif(not os.path.exists(DEBIAN_PYTHON), reason="no Debian python3")
def test_python_venv_with_a_pip_distribution(work: Path) -> None:
    """A venv of Debian's python3 with a distribution that pip installed: the image makes the venv again
    and pip-installs the same version; the venv's own files are not copied."""
    subprocess.run([DEBIAN_PYTHON, "-m", "venv", "--without-pip", str(work / "venv")], check=True)
    wheel = work / "tinydist-1.2.3-py3-none-any.whl"
    write_wheel(wheel, "tinydist", "1.2.3", {"tinydist/__init__.py": b"VALUE = 42\n"})
    site = work / "venv/lib/python3.11/site-packages"
    if not site.is_dir():
        pytest.skip("Debian's python is not 3.11 here")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    (work / "use.py").write_text("import tinydist\nprint(tinydist.VALUE)\n")
    command = ["venv/bin/python3", "use.py"]
    path, parsed, out = run(work, *command)
    assert out == "42\n"
    common_checks(path, parsed, command, work)
    runs = "\n".join(instructions(parsed, "RUN"))
    assert f"-m venv {work}/venv" in runs
    assert f"{work}/venv/bin/python -m pip install --no-cache-dir tinydist==1.2.3" in runs
    assert "python3-venv" in installed(parsed)
    copied = copies(path, parsed)
    assert str(work / "use.py") in copied
    assert not [d for d in copied if d.startswith(str(work / "venv"))]


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="no dpkg")
def test_unpackaged_python_is_copied_with_its_pip_modules(work: Path) -> None:
    """This machine's own python (pyenv) belongs to no package: it is copied, and so are the pip modules
    it imported (no pip in the image to install them), which a comment names with their versions."""
    sqlparse = pytest.importorskip("sqlparse")
    from importlib.metadata import version

    executable = os.path.realpath(sys.executable)
    owned = subprocess.run(["dpkg-query", "-S", executable], capture_output=True, text=True)
    if owned.returncode == 0:
        pytest.skip(f"{executable} belongs to a package here")
    (work / "q.py").write_text("import sqlparse\nprint(sqlparse.format('select 1', keyword_case='upper'))\n")
    command = [executable, "q.py"]
    path, parsed, out = run(work, *command)
    assert out == "SELECT 1\n"
    copied = copies(path, parsed)
    assert executable in copied
    assert os.path.realpath(sqlparse.__file__) in copied or sqlparse.__file__ in copied
    assert f"sqlparse=={version('sqlparse')}" in path.read_text()
    assert not [v for v in instructions(parsed, "RUN") if "pip install" in v]


@on_debian
def test_shell_pipeline(work: Path) -> None:
    (work / "words.txt").write_text("b\na\nc\na\n")
    command = ["sh", "-c", "sort words.txt |\nuniq -c | wc -l"]  # a line break: kept in CMD, not in comments
    path, parsed, out = run(work, *command)
    assert out.strip() == "3"
    common_checks(path, parsed, command, work)
    packages = set(installed(parsed))
    assert {"dash", "coreutils", "libc6"} <= packages
    assert str(work / "words.txt") in copies(path, parsed)
    assert instructions(parsed, "EXPOSE") == []


SERVER = """
import socket, sys
upstream = int(sys.argv[1])
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
print(listener.getsockname()[1], flush=True)
connection, _ = listener.accept()
data = connection.recv(100)
with socket.create_connection(("127.0.0.1", upstream)) as out:  # a port it connects to: not exposed
    out.sendall(data)
connection.sendall(b"ok")
connection.close()
"""


@on_debian
@pytest.mark.skipif(not os.path.exists(DEBIAN_PYTHON), reason="no Debian python3")
def test_server_exposes_the_port_it_listened_on_only(work: Path) -> None:
    (work / "server.py").write_text(SERVER)
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen(1)
    upstream.settimeout(60)
    upstream_port = upstream.getsockname()[1]
    command = [DEBIAN_PYTHON, "server.py", str(upstream_port)]
    work, process = trace(work, *command)
    try:
        port = int(process.stdout.readline())  # type: ignore[union-attr]
        with socket.create_connection(("127.0.0.1", port), timeout=60) as client:
            client.sendall(b"ping")
            relayed, _ = upstream.accept()
            with relayed:
                assert relayed.recv(100) == b"ping"
            assert client.recv(100) == b"ok"
    finally:
        upstream.close()
    path, parsed, _ = finish(work, process)
    common_checks(path, parsed, command, work)
    assert instructions(parsed, "EXPOSE") == [str(port)]
    assert str(upstream_port) not in " ".join(instructions(parsed, "EXPOSE"))
    assert f"port {port} was bound to 127.0.0.1" in path.read_text()  # reachable only if it listens on all


# -- replay and the package cache ----------------------------------------------------------------------
@pytest.mark.skipif(not SURVOL.is_dir(), reason=f"{SURVOL} is absent")
def test_replayed_foreign_log_lists_files_and_guesses_the_base(tmp_path: Path) -> None:
    log = SURVOL / "dockit_copy_bigfile.strace.log"
    if not log.exists():
        pytest.skip(f"{log} is absent")
    done = subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", "-D", "-i", str(log), "-l", str(tmp_path / "cp")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    path = tmp_path / "cp.docker" / "Dockerfile"
    text = path.read_text()
    parsed = dockerfile_parse.DockerfileParser(path=str(path))
    assert parsed.baseimage == "fedora"  # /usr/lib64 libraries: a Fedora host, said as a guess
    assert "GUESSED" in text
    assert instructions(parsed, "COPY") == [] and not (tmp_path / "cp.docker" / "rootfs").exists()
    assert "#   /usr/bin/cp" in text and "#   /usr/lib64/libc-2.25.so" in text
    assert instructions(parsed, "CMD") == [json.dumps(["cp", "mineit_find_grep.log", "tutu"])]
    assert instructions(parsed, "WORKDIR") == ["/home/rchateau/survol/Experimental/RetroBatch"]
    assert "#   /home/rchateau/survol/Experimental/RetroBatch/tutu" not in text  # its output, not an input


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="no dpkg")
def test_owners_are_asked_in_one_batch_and_cached(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def runner(command: list[str]) -> str:
        calls.append(command)
        return subprocess.run(command, capture_output=True, text=True).stdout

    paths = ["/usr/bin/cat", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/etc/hostname", "/bin/sh"]
    owners = PackageOwners("dpkg", cache=str(tmp_path), runner=runner)
    first = owners.owners(paths)
    assert len(calls) == 1  # one dpkg-query for all the paths and their merged-/usr twins
    assert first["/usr/bin/cat"] == "coreutils"  # known to dpkg as /bin/cat only
    assert first["/usr/lib/x86_64-linux-gnu/libc.so.6"] == "libc6"
    assert first["/etc/hostname"] is None
    assert first["/bin/sh"] == "dash"  # past the diversion lines
    again = PackageOwners("dpkg", cache=str(tmp_path), runner=runner)
    assert again.owners(paths) == first and len(calls) == 1 and again.queried == 0


def test_dpkg_output_with_diversions_and_architectures() -> None:
    output = subprocess.run(["dpkg-query", "-S", "/bin/sh"], capture_output=True, text=True).stdout
    if not output:
        pytest.skip("no dpkg here")
    assert parse_dpkg_search(output)["/bin/sh"] == "dash"


def write_wheel(path: Path, name: str, version: str, files: dict[str, bytes]) -> None:
    """A pure-Python wheel, as a build backend would make it, for pip to install offline."""

    def digest(data: bytes) -> str:
        return "sha256=" + urlsafe_b64encode(sha256(data).digest()).rstrip(b"=").decode()

    info = f"{name}-{version}.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: dockit-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = "".join(f"{n},{digest(b)},{len(b)}\n" for n, b in files.items()) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
        archive.writestr(f"{info}/RECORD", record)
