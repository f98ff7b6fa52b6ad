"""Record the fixtures of test_tag1_decoder.py: the real client traced by dockit against the real server.

    python3 examples/dockit-tag1/tests/record_fixtures.py      (from the repository's root, as root)

Each session is traced with `dockit -l`, and its one TCP connection cut out with `dockit extract`
into tests/fixtures/NAME.chunks. The facts each must yield are stated in test_tag1_decoder.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent
REPO = PACKAGE.parent.parent
sys.path.insert(0, str(PACKAGE))

from dockit_tag1 import server  # noqa: E402

PASSWORD = "Pw-7fQ2-tag1-Zx9K"
DECODER = "dockit_tag1.decoder:Tag1Decoder"
SESSIONS = {
    # one message a call, the logon written in two calls, the 2nd order's checksum spoiled
    "session": ["--split-logon", "--bad-checksum", "2", "buy 100 ACME 10.25", "sell 5 XYZ 3",
                "buy 7 QQQ 1.5", "cancel c1", "cancel c2", "buy 0 BAD 1"],
    # everything in a few calls of at most 50 bytes, sent before any answer is read
    "pipelined": ["--pipeline", "--write-size", "50", "buy 100 ACME 10.25", "sell 5 XYZ 3", "cancel c1"],
}  # fmt: skip


def dockit(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(PACKAGE)]), "TAG1_PASSWORD": PASSWORD}
    command = [sys.executable, "-m", "dockit_core.cli", *args]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True, **kwargs)


def record(name: str, client_args: list[str], port: int, folder: Path) -> None:
    prefix = folder / name
    dockit("--decoder", DECODER, "-l", str(prefix),
           sys.executable, "-m", "dockit_tag1.client", "--port", str(port), *client_args)  # fmt: skip
    (log,) = folder.glob(f"{name}.strace.*.log")
    # The decoder is not installed: --decoder lets it claim its channel in the listing (DECODER column).
    listing = dockit("extract", "--decoder", DECODER, str(log)).stdout.splitlines()
    (channel,) = [line.split()[0] for line in listing[1:] if line.split()[2] == "tag1"]
    out = HERE / "fixtures" / f"{name}.chunks"
    dockit("extract", "--channel", channel, "-o", str(out), str(log))
    print(f"{out}: {out.stat().st_size} bytes")


def main() -> None:
    (HERE / "fixtures").mkdir(exist_ok=True)
    tcp_server, _ = server.start(password=PASSWORD)
    try:
        with tempfile.TemporaryDirectory() as folder:
            for name, client_args in SESSIONS.items():
                record(name, client_args, tcp_server.server_address[1], Path(folder))
    finally:
        tcp_server.shutdown()
        tcp_server.server_close()


if __name__ == "__main__":
    main()
