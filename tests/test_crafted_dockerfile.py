"""`-D` on crafted logs and real runs: what a log names is never read or written beyond what is safe
(issue 17, "Reading and writing what a log names").

Each crafted log is written here, beside files made for it; the real runs trace `cat` and `sh`."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_dockit

dockerfile_parse = pytest.importorskip("dockerfile_parse")

HEAD = '4242 1700000000.000001 execve("/usr/bin/cat", ["cat", "x"], 0x7ffd /* 4 vars */) = 0 <0.000100>\n'
EXIT = "4242 1700000000.000099 +++ exited with 0 +++\n"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nMARKER-KEY\n-----END OPENSSH PRIVATE KEY-----\n"


def read_line(path: str, fd: int = 3) -> str:
    """An open, a read and a close of `path` as -yy shows them (the path as the log spells it)."""
    return (
        f'4242 1700000000.000002 openat(AT_FDCWD, "{path}", O_RDONLY) = {fd}<{path}> <0.000010>\n'
        f'4242 1700000000.000003 read({fd}<{path}>, "x", 4096) = 1 <0.000010>\n'
        f"4242 1700000000.000004 close({fd}<{path}>) = 0 <0.000010>\n"
    )


@pytest.fixture(scope="module")
def here_ini(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The lines of a .ini that a live run on this machine writes about the machine: a log with them
    beside it was recorded here."""
    folder = tmp_path_factory.mktemp("here")
    result = run_dockit("-l", str(folder / "p"), "true")
    assert result.returncode == 0, result.stderr
    (ini,) = folder.glob("p.strace.*.ini")
    lines = [line for line in ini.read_text().splitlines()
             if line.startswith(("CurrentHostname=", "MachineId=", "OsRelease="))]  # fmt: skip
    return "\n".join(lines) + "\n"


def recorded_here(log: Path, here_ini: str) -> None:
    log.with_suffix(".ini").write_text(here_ini)


def context_files(docker: Path) -> dict[str, bytes]:
    rootfs = docker / "rootfs"
    if not rootfs.exists():
        return {}
    return {str(p.relative_to(rootfs)): p.read_bytes() for p in rootfs.rglob("*") if p.is_file()}


def make_secrets(folder: Path) -> dict[str, Path]:
    """Files that hold credentials, under names that say nothing of it (but the well-known ones)."""
    home = folder / "home"
    (home / ".aws").mkdir(parents=True)
    (folder / "app").mkdir()
    files = {
        "key": folder / "deploy_key.txt",
        "cnf": folder / "app" / "db.cnf",
        "pgpass": home / ".pgpass",
        "netrc": home / ".netrc",
        "gitconfig": home / ".gitconfig",
        "aws": home / ".aws" / "config",
    }
    files["key"].write_text(PRIVATE_KEY)
    files["cnf"].write_text("[client]\nuser=app\npassword=MARKER-CNF\n")
    files["pgpass"].write_text("db:5432:app:app:MARKER-PGPASS\n")
    files["netrc"].write_text("machine h login u password MARKER-NETRC\n")
    files["gitconfig"].write_text("[http]\n\textraHeader = AUTHORIZATION: bearer MARKER-GIT\n")
    files["aws"].write_text("[default]\naws_secret_access_key = MARKER-AWS\n")
    link = folder / "innocent.cfg"
    link.symlink_to(files["key"])
    files["link"] = link
    return files


def test_credentials_are_never_copied_whatever_the_spelling(tmp_path: Path, here_ini: str) -> None:
    files = make_secrets(tmp_path)
    plain = tmp_path / "app" / "settings.ini"
    plain.write_text("color=blue\n")
    spellings = ["/etc/shadow-", "/etc/./shadow", "/opt/../etc/shadow", "//etc/gshadow", "/etc/gshadow-"]
    body = "".join(read_line(p) for p in [*spellings, *map(str, files.values()), str(plain)])
    log = tmp_path / "crafted.log"
    log.write_text(HEAD + body + EXIT)
    recorded_here(log, here_ini)
    result = run_dockit("-D", "-i", str(log), "-l", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    copied = context_files(tmp_path / "out.docker")
    assert str(plain).lstrip("/") in copied  # a plain file is copied: the rest is left out on purpose
    shadows = [Path(p).read_bytes() for p in ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-")
               if os.path.exists(p)]  # fmt: skip
    for name, data in copied.items():
        assert b"MARKER" not in data, name
        assert not any(s and s in data for s in shadows), name
        assert "shadow" not in name, name
    dockerfile = (tmp_path / "out.docker" / "Dockerfile").read_text()
    listed = dockerfile.split("# files with credentials, NOT copied into the image", 1)[1]
    for path in ["/etc/shadow-", "/etc/gshadow-", *map(str, files.values())]:
        assert f"#   {path}  (" in listed, path
    assert "(holds a private key)" in listed and "(holds an http.extraHeader (a token))" in listed
    assert f"{files['cnf']}  (holds a password or token setting)" in listed


def test_live_run_copies_no_credentials(tmp_path: Path) -> None:
    """`dockit -D cat /etc/shadow- KEY LINK`: the program reads them, the image gets none of them."""
    files = make_secrets(tmp_path)
    readable = [p for p in ("/etc/shadow-", "/etc/gshadow-") if os.path.exists(p)]
    result = run_dockit("-D", "-l", str(tmp_path / "p"), "cat", *readable, str(files["key"]), str(files["link"]),
                        str(files["cnf"]), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    (docker,) = tmp_path.glob("p.strace.*.docker")
    for name, data in context_files(docker).items():
        assert b"MARKER" not in data and "shadow" not in name, name
    dockerfile = (docker / "Dockerfile").read_text()
    for path in [*readable, str(files["key"]), str(files["cnf"])]:  # -yy names the link's target
        assert f"#   {path}  (" in dockerfile, path


def test_a_log_not_recorded_here_copies_nothing_without_being_told(tmp_path: Path) -> None:
    plain = tmp_path / "settings.ini"
    plain.write_text("color=blue\n")
    log = tmp_path / "run.strace.4242.log"
    log.write_text(HEAD + read_line(str(plain)) + EXIT)
    ini = tmp_path / "run.strace.4242.ini"
    here = run_dockit("-D", "-l", str(tmp_path / "live"), "true")  # a .ini of this machine, to compare
    assert here.returncode == 0, here.stderr
    (live_ini,) = tmp_path.glob("live.strace.*.ini")
    machine = [line for line in live_ini.read_text().splitlines() if line.startswith("MachineId=")]
    assert machine, live_ini.read_text()
    cases = {
        "no .ini": None,
        "another host": f"CurrentHostname=elsewhere\n{machine[0]}\n",
        "another machine": f"CurrentHostname={platform.node()}\nMachineId=0123456789abcdef0123456789abcdef\n",
        "an old .ini": f"CurrentHostname={platform.node()}\n",
    }
    for case, text in cases.items():
        if text is None:
            ini.unlink(missing_ok=True)
        else:
            ini.write_text(text)
        out = tmp_path / case.replace(" ", "-")
        result = run_dockit("-D", "-i", str(log), "-l", str(out))
        assert result.returncode == 0, result.stderr
        assert context_files(Path(f"{out}.docker")) == {}, case
        dockerfile = Path(f"{out}.docker/Dockerfile").read_text()
        assert f"#   {plain}" in dockerfile and "--copy-from-host" in dockerfile, case
    ini.write_text(f"CurrentHostname={platform.node()}\n{machine[0]}\n")  # recorded here: copied
    result = run_dockit("-D", "-i", str(log), "-l", str(tmp_path / "here"))
    assert str(plain).lstrip("/") in context_files(tmp_path / "here.docker"), result.stderr
    ini.unlink()
    result = run_dockit("-D", "--copy-from-host", "-i", str(log), "-l", str(tmp_path / "told"))
    assert str(plain).lstrip("/") in context_files(tmp_path / "told.docker"), result.stderr


def test_paths_never_leave_the_build_context(tmp_path: Path, here_ini: str) -> None:
    """`/opt/../../..` + a path: the copy went to `rootfs/opt/../../../..`, outside the context, and
    overwrote what was there."""
    source = tmp_path / "input.txt"
    source.write_text("from the log\n")
    out = tmp_path / "out"
    depth = len((Path(f"{out}.docker") / "rootfs" / "opt").parts) - 2  # the ups that reach the first folder
    crafted = "/opt" + "/.." * depth + str(source)
    victim = Path("/", tmp_path.parts[1]) / str(source).lstrip("/")  # /tmp/tmp/pytest-of-.../input.txt
    try:
        victim.parent.mkdir(parents=True, exist_ok=True)
        victim.write_text("ORIGINAL\n")
        log = tmp_path / "escape.log"
        log.write_text(HEAD + read_line(crafted) + read_line(crafted + "/../" + source.name, 4) + EXIT)
        recorded_here(log, here_ini)
        result = run_dockit("-D", "-i", str(log), "-l", str(out))
        assert result.returncode == 0, result.stderr
        assert victim.read_text() == "ORIGINAL\n"
        copied = context_files(Path(f"{out}.docker"))
        assert copied == {str(source).lstrip("/"): b"from the log\n"}
        outside = [p for p in tmp_path.rglob("*") if p.is_file() and not str(p).startswith(f"{out}.")]
        assert sorted(outside) == sorted([source, log, log.with_suffix(".ini")])
    finally:
        shutil.rmtree(victim.parent, ignore_errors=True)  # this test's own folder there
        try:
            os.removedirs(victim.parent.parent)  # and the folders above it, when nothing else is in them
        except OSError:
            pass


def test_links_in_the_build_context_are_not_followed(tmp_path: Path, here_ini: str) -> None:
    plain = tmp_path / "settings.ini"
    plain.write_text("color=blue\n")
    log = tmp_path / "run.log"
    log.write_text(HEAD + read_line(str(plain)) + EXIT)
    recorded_here(log, here_ini)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    Path(f"{tmp_path}/linked.docker").symlink_to(elsewhere)
    result = run_dockit("-D", "-i", str(log), "-l", str(tmp_path / "linked"))
    assert result.returncode == 2
    assert "is a symbolic link: refused" in result.stderr and "Traceback" not in result.stderr
    assert list(elsewhere.iterdir()) == []
    docker = tmp_path / "inner.docker"
    docker.mkdir()
    (docker / "rootfs").symlink_to(elsewhere)
    (docker / "Dockerfile").symlink_to(elsewhere / "Dockerfile")
    result = run_dockit("-D", "-i", str(log), "-l", str(tmp_path / "inner"))
    assert result.returncode == 0, result.stderr
    assert list(elsewhere.iterdir()) == []
    assert not (docker / "rootfs").is_symlink() and not (docker / "Dockerfile").is_symlink()
    assert context_files(docker) == {str(plain).lstrip("/"): b"color=blue\n"}


def test_environment_keeps_what_the_program_needs_and_no_credential(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "DATABASE_URL": "postgres://app:MARKER-DB@db:5432/shop",
        "REDIS_URL": "redis://:MARKER-REDIS@cache:6379/0",
        "HTTP_PROXY": "http://user:MARKER-PROXY@proxy:3128",
        "APP_HOOK": "https://h/hook?password=MARKER-Q&api_key=MARKER-K&page=2",
        "CAT_COLOR": "blue",  # named after the traced program: kept
        "PYENV_ROOT": "/opt/pyenv-MARKER-NOISE",
        "CONTAINER_NAME": "builder-MARKER-NOISE",
        "PIP_FIND_LINKS": "/srv/wheels-MARKER-NOISE",
        "CR_INJECT": "x\rEnv.FAKE=1\rRUN touch /pwned",
        "CR_INJECT2": "y\nOsRelease=evil",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    result = run_dockit("-D", "-l", str(tmp_path / "p"), "cat", "/etc/hostname", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (ini,) = tmp_path.glob("p.strace.*.ini")
    (docker,) = tmp_path.glob("p.strace.*.docker")
    ini_text = ini.read_text()
    dockerfile = (docker / "Dockerfile").read_text()
    for text in (ini_text, dockerfile):
        assert "MARKER-DB" not in text and "MARKER-REDIS" not in text and "MARKER-PROXY" not in text
        assert "MARKER-Q" not in text and "MARKER-K" not in text
        lines = text.replace("\r", "\n").splitlines()
        assert not [line for line in lines if line.startswith(("Env.FAKE", "RUN touch", "OsRelease=evil"))]
    assert "postgres://app:<redacted>@db:5432/shop" in ini_text
    parsed = dockerfile_parse.DockerfileParser(path=str(docker / "Dockerfile"))
    envs = parsed.envs
    assert envs["DATABASE_URL"] == "postgres://app:<redacted>@db:5432/shop"
    assert envs["REDIS_URL"] == "redis://:<redacted>@cache:6379/0"
    assert envs["CAT_COLOR"] == "blue" and envs["LANG"] == "C.UTF-8"
    assert not [
        k for k in envs if k in ("PYENV_ROOT", "CONTAINER_NAME", "PIP_FIND_LINKS", "CR_INJECT", "APP_HOOK")
    ]
    assert "MARKER-NOISE" not in dockerfile
    left = [line for line in dockerfile.splitlines() if line.startswith("# left out of ENV")]
    assert left and "PYENV_ROOT" in left[0] and "CONTAINER_NAME" in left[0] and "CR_INJECT" in left[0]
    assert [i["instruction"] for i in parsed.structure if i["instruction"] == "RUN"] == [
        i["instruction"] for i in parsed.structure if i["instruction"] == "RUN" and "touch" not in i["value"]
    ]


def test_a_crafted_ini_injects_no_line_into_the_dockerfile(tmp_path: Path) -> None:
    log = tmp_path / "run.strace.4242.log"
    log.write_text(HEAD + EXIT)
    (tmp_path / "run.strace.4242.ini").write_bytes(
        b"CurrentDate=2026-01-01\rRUN touch /pwned-date\n"
        b"CurrentHostname=vm\rRUN touch /pwned-host\n"
        b"OsRelease=debian:12\rRUN touch /pwned-release\n"
        b"CurrentDirectory=/srv\x00\rWORKDIR /pwned\n"
        b"Env.LANG=C\x00\rRUN touch /pwned-env\n"
    )
    result = run_dockit("-D", "-i", str(log), "-l", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    path = tmp_path / "out.docker" / "Dockerfile"
    text = path.read_bytes()
    assert b"\r" not in text and b"\0" not in text
    parsed = dockerfile_parse.DockerfileParser(path=str(path))
    assert not [i for i in parsed.structure if "pwned" in i["value"] and i["instruction"] != "COMMENT"]
    assert parsed.baseimage != "debian:12\rRUN touch /pwned-release"


def test_secrets_on_command_lines_stay_out_of_every_output(tmp_path: Path) -> None:
    """`env MYSQL_PWD=...`, and the same inside `sh -c` (a script of two lines): the summary, the .ini,
    every calls file and CMD show none of them; the raw .log keeps them."""
    script = "MYSQL_PWD=MARKER-SH true\necho x --password=MARKER-PW > /dev/null; API_TOKEN=MARKER-TK true"
    outputs = []
    for fmt in ("TXT", "CSV", "JSON"):
        for each in ([], ["--each-call"]):
            prefix = tmp_path / f"p-{fmt}-{len(each)}"
            result = run_dockit("-D", "-f", fmt, *each, "-l", str(prefix), "env", "MYSQL_PWD=MARKER-ENV", "sh",
                                "-c", script, cwd=tmp_path)  # fmt: skip
            assert result.returncode == 0, result.stderr
            outputs += [p for p in tmp_path.glob(f"{prefix.name}.strace.*") if not p.name.endswith(".log")]
    files = [p for p in outputs if p.is_file()] + [p / "Dockerfile" for p in outputs if p.is_dir()]
    assert len(files) == 6 * 3 + 6  # .ini, .xml, calls file, Dockerfile
    for path in files:
        assert "MARKER" not in path.read_text(errors="replace"), path
    (log,) = tmp_path.glob("p-TXT-0.strace.*.log")
    assert "MARKER-ENV" in log.read_text()
    (xml,) = tmp_path.glob("p-TXT-0.strace.*.xml")
    assert "MYSQL_PWD=&lt;redacted&gt; true" in xml.read_text()


def test_each_call_hides_password_settings_in_file_contents(tmp_path: Path) -> None:
    """A `--defaults-file` read shows its bytes in `--each-call`: its password line is redacted, live
    (the calls file sees the whole buffer) and in a replay."""
    options = tmp_path / "client.cnf"
    options.write_text("[client]\nuser=app\npassword=MARKER-FILE\nhost=db\n")
    result = run_dockit("--each-call", "-f", "JSON", "-l", str(tmp_path / "p"), "cat", str(options))
    assert result.returncode == 0, result.stderr
    (calls,) = tmp_path.glob("p.strace.*.json")
    text = calls.read_text()
    assert "MARKER-FILE" not in text and "password=<redacted>" in text and "user=app" in text
    log = tmp_path / "hash.log"
    log.write_text(
        HEAD
        + '4242 1700000000.000005 recvfrom(3<TCP:[127.0.0.1:4000->127.0.0.1:3306]>, "\\1\\0\\0\\1\\1)\\0\\0'
        '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19", 47, 0, NULL, NULL) = 47 <0.000010>\n' + EXIT
    )
    result = run_dockit("--each-call", "-i", str(log), "-l", str(tmp_path / "hash"))
    assert result.returncode == 0, result.stderr
    assert "2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19" not in (tmp_path / "hash.txt").read_text()


def test_cat_of_a_file_whose_name_holds_a_newline_makes_no_instruction(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    odd = folder / "a\nRUN touch pwned"
    odd.write_text("x\n")
    result = run_dockit("-D", "-l", str(tmp_path / "p"), "cat", str(odd), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (docker,) = tmp_path.glob("p.strace.*.docker")
    lines = (docker / "Dockerfile").read_text().splitlines()
    assert not [line for line in lines if line.startswith("RUN touch")]
    assert "files whose names a Dockerfile cannot hold" in "\n".join(lines)


def test_a_program_kept_under_tmp_has_its_files_copied(tmp_path: Path) -> None:
    """Its script and config under /tmp were classed "Temporary files" and left out: the image could
    not run it. They are copied now; what the run itself made and deleted is not."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "config.ini").write_text("[app]\ncolor=blue\n")
    (app / "main.py").write_text(
        "import os, pathlib\n"
        "here = pathlib.Path(__file__).parent\n"
        "print((here / 'config.ini').read_text())\n"
        "scratch = here / 'scratch.tmp'\n"
        "scratch.write_text('made and gone')\n"
        "os.unlink(scratch)\n"
    )
    result = run_dockit("-D", "-l", str(tmp_path / "p"), "python3", str(app / "main.py"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (docker,) = tmp_path.glob("p.strace.*.docker")
    copied = context_files(docker)
    assert copied[str(app / "config.ini").lstrip("/")] == b"[app]\ncolor=blue\n"
    assert str(app / "main.py").lstrip("/") in copied
    assert str(app / "scratch.tmp").lstrip("/") not in copied
