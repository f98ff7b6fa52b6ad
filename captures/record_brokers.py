"""Record the message-broker captures with dockit itself: real clients, the machine's real brokers.

    python captures/record_brokers.py                        # all five captures into captures/
    python captures/record_brokers.py amqp_pika nats_py      # some of them
    python captures/record_brokers.py --out DIR mqtt_paho5   # elsewhere (the tests do this)

The brokers: RabbitMQ on 127.0.0.1:5672, Mosquitto on 1883, NATS with JetStream on 4222. Before the AMQP
capture the recorder (untraced, as root) makes the RabbitMQ user `dockit_capture_user` with a throwaway
password (`rabbitmqctl add_user`) and deletes it afterwards; Mosquitto and NATS here take any user, so
the MQTT and NATS clients log in with the same throwaway password, which the tests look for in every
output.

How: the Python clients (captures/broker_clients.py: pika, paho-mqtt in 3.1.1 and 5, nats-py) are
started untraced, import their library, say they are ready, and are attached with `dockit -p PID` until
they exit (their imports alone would pass the 300 KB a capture may take). `mosquitto_pub` and
`mosquitto_sub` run from a shell script traced from its start (`dockit -l ... sh clients.sh`).

Each capture runs in its own empty folder /tmp/dockit-captures/<name> with a small fixed environment, and
leaves `captures/<name>.strace.<pid>.log` and `.ini`, and the summary dockit wrote live as
`<name>.live.xml`, so that a replay of the log can be compared with what the live run said. The
facts each capture must yield are in BROKER_FACTS.md and checked by tests/test_broker_captures.py.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from record import ENVIRONMENT, WORK, collect_log  # noqa: E402 - the recorder of the core captures

TAG = "dockit_cap"
USER = "dockit_capture_user"
# Throwaway: the RabbitMQ user is deleted after every recording; Mosquitto and NATS ignore it.
PASSWORD = "Thr0waway-broker-5e02"
NAMES = ["amqp_pika", "mqtt_paho311", "mqtt_paho5", "mqtt_mosquitto", "nats_py"]


@dataclass(frozen=True)
class Settings:
    """What a recording uses: the committed captures use the defaults; the tests their own tag and
    user, so that a recording running at the same time is not disturbed."""

    tag: str = TAG
    user: str = USER
    password: str = PASSWORD
    work: Path = WORK
    keep_summary: bool = True


def mosquitto_script(tag: str, password: str) -> str:
    """A retained message; a subscriber at QoS 1 that receives it first, then one message from each of
    three publishers at QoS 0, 1 and 2 (the last logs in with a password); the retained message
    cleared."""
    return f"""set -e
mosquitto_pub -h 127.0.0.1 -i {tag}-r -t {tag}/ready -m r -r -q 1
mosquitto_sub -h 127.0.0.1 -i {tag}-sub -t '{tag}/#' -q 1 -C 4 -v > received.txt &
while [ ! -s received.txt ]; do sleep 0.05; done
mosquitto_pub -h 127.0.0.1 -i {tag}-p0 -t {tag}/x -m one -q 0
mosquitto_pub -h 127.0.0.1 -i {tag}-p1 -t {tag}/y -m two -q 1
mosquitto_pub -h 127.0.0.1 -i {tag}-p2 -t {tag}/z -m three -q 2 -u bob -P {password}
wait
mosquitto_pub -h 127.0.0.1 -i {tag}-c -t {tag}/ready -r -n -q 1
"""


def client(name: str, settings: Settings) -> list[str]:
    scenario, port = {
        "amqp_pika": ("amqp", 5672),
        "mqtt_paho311": ("mqtt4", 1883),
        "mqtt_paho5": ("mqtt5", 1883),
        "nats_py": ("nats", 4222),
    }[name]
    python = os.path.realpath(sys.executable)
    return [
        python,
        "-B",
        "broker_clients.py",  # copied into the work folder: the same path in every log
        scenario,
        str(port),
        settings.tag,
        settings.user,
        "--attach",
    ]


@contextlib.contextmanager
def rabbitmq_user(user: str, password: str) -> Iterator[None]:
    def ctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)

    ctl("add_user", user, password)
    try:
        ctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
        yield
    finally:
        ctl("delete_user", user)


def dockit_command(prefix: Path) -> list[str]:
    """dockit from DOCKIT_SOURCE when set, else from this checkout (not whatever is installed), found by
    its path rather than by PYTHONPATH: the traced program inherits dockit's environment, and the .ini
    records it."""
    source = os.environ.get("DOCKIT_SOURCE") or str(HERE.parent)
    run = f"import runpy, sys; sys.path.insert(0, {source!r}); runpy.run_module('dockit_core', run_name='__main__')"
    return [sys.executable, "-c", run, "-l", str(prefix)]


def dockit_environment() -> dict[str, str]:
    return dict(ENVIRONMENT)


def record(name: str, out: Path = HERE, settings: Settings = Settings()) -> Path:
    folder = settings.work / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for old in glob.glob(str(out / f"{name}.strace.*")) + glob.glob(str(out / f"{name}.live.xml")):
        os.unlink(old)
    dockit = dockit_command(out / name)
    with open(folder / "stdout.txt", "wb") as stdout, open(folder / "stderr.txt", "wb") as stderr:
        if name == "mqtt_mosquitto":
            (folder / "clients.sh").write_text(mosquitto_script(settings.tag, settings.password))
            status = subprocess.run(
                [*dockit, "sh", "clients.sh"],
                cwd=folder,
                env=dockit_environment(),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                check=False,
            ).returncode
        else:
            status = _attach(name, folder, dockit, settings, stdout, stderr)
    if settings.keep_summary:
        (live,) = glob.glob(str(out / f"{name}.strace.*.xml"))
        shutil.copy(live, out / f"{name}.live.xml")
    return collect_log(out, name, folder, status, 0)


def _attach(
    name: str, folder: Path, dockit: list[str], settings: Settings, stdout: IO[bytes], stderr: IO[bytes]
) -> int:
    """Start the client untraced; once it has written `ready`, `dockit -p` it until it exits."""
    shutil.copy(HERE / "broker_clients.py", folder)
    environment = dict(ENVIRONMENT, DOCKIT_CAPTURE_PASSWORD=settings.password)
    program = subprocess.Popen(
        client(name, settings),
        cwd=folder,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
    )
    try:
        deadline = time.monotonic() + 60
        while not (folder / "ready").exists():
            if program.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name}: never ready (status {program.poll()})")
            time.sleep(0.01)
        (folder / "ready").unlink()
        attached = subprocess.run(
            [*dockit, "-p", str(program.pid)],
            cwd=folder,
            env=dockit_environment(),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            timeout=300,
            check=False,
        )
        if attached.returncode != 0:
            raise SystemExit(f"{name}: dockit -p returned {attached.returncode}")
        return program.wait(timeout=60)
    finally:
        if program.poll() is None:
            program.kill()
            program.wait()


def record_all(names: list[str], out: Path = HERE, settings: Settings = Settings()) -> dict[str, Path]:
    unknown = set(names) - set(NAMES)
    if unknown:
        raise SystemExit(f"unknown capture(s): {sorted(unknown)}")
    chosen = [name for name in NAMES if not names or name in names]
    logs: dict[str, Path] = {}
    for name in chosen:
        if name == "amqp_pika":
            with rabbitmq_user(settings.user, settings.password):
                logs[name] = record(name, out, settings)
        else:
            logs[name] = record(name, out, settings)
    return logs


def main(args: list[str]) -> int:
    out = HERE
    if args[:1] == ["--out"]:
        out, args = Path(args[1]).resolve(), args[2:]
        out.mkdir(parents=True, exist_ok=True)
    for name, log in record_all(args, out).items():
        print(f"{name}: {log} ({log.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
