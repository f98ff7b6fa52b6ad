# ruff: noqa: F811  (the fixtures imported from test_dockerfile are parameters here)
"""`-D` on more real programs traced live: the facts checked are this machine's (dpkg, the files on disk,
the pip RECORDs, Docker's word rules as dockerfile-parse applies them), not values dockit computes.

Each test is a bug found by tracing the program by hand: its Dockerfile was wrong or dockit was slow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

from dockit_core.outputs.docker.packages import PipDistributions
from tests.test_dockerfile import (  # noqa: F401 (fixtures)
    DEBIAN_PYTHON,
    dpkg_owns,
    finish,
    installed,
    instructions,
    on_debian,
    package_cache,
    run,
    trace,
    work,
)

dockerfile_parse = pytest.importorskip("dockerfile_parse")
from dockerfile_parse.util import WordSplitter  # noqa: E402

pytestmark = [
    pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed"),
]


def unpackaged_python() -> bool:
    return shutil.which("dpkg-query") is None or not dpkg_owns(os.path.realpath(sys.executable))


def docker_words(value: str) -> list[str]:
    """COPY's arguments as Docker reads them: JSON or blank-separated, then each word through the
    shell-like lexer (quotes and backslashes taken out, `$NAME` expanded)."""
    raw = json.loads(value) if value.startswith("[") else value.split()
    return [WordSplitter(word, args={"HOME": "/home/expanded"}).dequote() for word in raw]


def copied(path: Path, parsed) -> dict[str, Path]:
    """{destination in the image: source file in the context}, as Docker would resolve them."""
    found = {}
    for value in instructions(parsed, "COPY"):
        *sources, destination = docker_words(value)
        for source in sources:
            found[destination + os.path.basename(source)] = path.parent / source
    return found


def test_pip_index_of_a_large_site_packages_is_quick() -> None:
    """Each file of a RECORD parsed its distribution's METADATA again: 120 distributions took 25 s."""
    try:
        requests = metadata.distribution("requests")
    except metadata.PackageNotFoundError:
        pytest.skip("requests is not installed")
    site = str(requests.locate_file(""))
    if len(list(metadata.distributions(path=[site]))) < 50:
        pytest.skip("a small site-packages proves nothing")
    init = os.path.join(site, "requests", "__init__.py")
    start = time.monotonic()
    owner = PipDistributions().owner(init)
    assert time.monotonic() - start < 5
    assert owner == (requests.metadata["Name"], requests.version)


@pytest.mark.skipif(not unpackaged_python(), reason="the pip files are copied only with an unpackaged Python")
def test_certificates_and_credentials_modules_of_pip_distributions_are_copied(work: Path) -> None:
    """certifi's cacert.pem (certificates, no key) and docker/credentials/ (code) were left out as
    "credentials": the copied Python could not import docker, nor verify a TLS peer."""
    try:
        certifi = metadata.distribution("certifi")
        docker = metadata.distribution("docker")
    except metadata.PackageNotFoundError:
        pytest.skip("certifi and docker (pip) are needed")
    bundle = str(certifi.locate_file("certifi/cacert.pem"))
    module = str(docker.locate_file("docker/credentials/__init__.py"))
    assert b"PRIVATE KEY" not in Path(bundle).read_bytes()
    code = "import certifi, docker; open(certifi.where()).read(64)"
    path, parsed, _ = run(work, sys.executable, "-c", code)
    files = copied(path, parsed)
    for wanted in (bundle, module):
        assert wanted in files, f"{wanted} is not copied"
        assert files[wanted].read_bytes() == Path(wanted).read_bytes()
    text = path.read_text()
    assert "NOT copied" not in text or bundle not in text[text.index("NOT copied") :]


@on_debian
def test_a_secret_in_the_command_line_stays_out_of_the_dockerfile(work: Path) -> None:
    """`env API_TOKEN=... prog`: the .ini redacted it, the Dockerfile's CMD and first comment did not."""
    secret = "zq-secret-" + os.urandom(4).hex()
    command = [
        "env",
        f"API_TOKEN={secret}",
        DEBIAN_PYTHON,
        "-c",
        "import os; print(len(os.environ['API_TOKEN']))",
    ]
    path, parsed, out = run(work, *command)
    assert out.strip() == str(len(secret))  # the program saw it
    assert secret not in path.read_text()
    for file in path.parent.rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file
    cmd = json.loads(instructions(parsed, "CMD")[0])
    assert cmd[0] == "env" and cmd[2:] == command[2:] and cmd[1].startswith("API_TOKEN=")


def test_paths_with_dollar_quote_and_space_survive_dockers_lexer(work: Path) -> None:
    """COPY and WORKDIR expand `$NAME` and take quotes out: `odd $HOME it's/da$ta 1.txt` became
    `odd /home/expanded its/da 1.txt` (or an unmatched-quote error) in the image."""
    folder = work / "odd $HOME it's"
    folder.mkdir()
    data = folder / "da$ta 1.txt"
    data.write_text("x\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "dockit_core.cli", "-D", "-l", str(work / "p"), "cat", data.name],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    path, parsed, out = finish(work, process)
    assert out == "x\n"
    files = copied(path, parsed)
    assert str(data) in files, sorted(files)
    assert files[str(data)].read_bytes() == data.read_bytes()
    (workdir,) = instructions(parsed, "WORKDIR")
    assert WordSplitter(workdir, args={"HOME": "/home/expanded"}).dequote() == str(folder)
    assert json.loads(instructions(parsed, "CMD")[0]) == ["cat", data.name]  # CMD is not expanded


@on_debian
@pytest.mark.skipif(shutil.which("gawk") is None, reason="gawk is not installed")
def test_a_scripts_interpreter_is_installed(work: Path) -> None:
    """`#!/usr/bin/gawk -f`: the kernel starts gawk without an open in the trace; gawk was missing."""
    gawk = "/usr/bin/gawk"
    owner = subprocess.run(["dpkg-query", "-S", gawk], capture_output=True, text=True).stdout
    package = owner.split(":")[0].strip()
    assert package
    script = work / "hello.awk"
    script.write_text(f'#!{gawk} -f\nBEGIN {{ print "hi" }}\n')
    script.chmod(0o755)
    path, parsed, out = run(work, "./hello.awk")
    assert out == "hi\n"
    assert package in installed(parsed)
    assert "/" + str(script).lstrip("/") in copied(path, parsed)
