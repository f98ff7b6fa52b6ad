"""The package installed as a user would, the real client traced by dockit against the real server.

The package is pip-installed into a folder of its own (`--target`), so that dockit finds the decoder
through its `dockit.decoders` entry point without touching the machine's Python. What the summary must
hold comes from the client's own report of what it sent and what the server answered.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from dockit_tag1 import server

PACKAGE = Path(__file__).resolve().parent.parent
PASSWORD = "Pw-7fQ2-tag1-Zx9K"
HALVES = (PASSWORD[: len(PASSWORD) // 2], PASSWORD[len(PASSWORD) // 2 :])  # --split-logon cuts it there
SIDES = {"1": "buy", "2": "sell"}
STATUSES = {"0": "new", "8": "rejected"}
REQUESTS = ["buy 100 ACME 10.25", "sell 5 XYZ 3", "buy 7 QQQ 1.5", "cancel c1", "cancel c2", "buy 0 BAD 1"]

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """dockit-tag1 installed with pip into a folder of its own; its path goes on PYTHONPATH."""
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (setup.sh installs it)")
    work = tmp_path_factory.mktemp("tag1-install")
    source = work / "source"  # a copy, so that the build leaves nothing in the checkout
    shutil.copytree(
        PACKAGE, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__")
    )
    target = work / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
    subprocess.run([*pip, "--no-build-isolation", "--target", str(target), str(source)], check=True)
    return target


@pytest.fixture
def env(installed) -> dict[str, str]:
    paths = [str(installed), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "TAG1_PASSWORD": PASSWORD}


@pytest.fixture
def tag1_server():
    tcp_server, thread = server.start(password=PASSWORD)
    yield tcp_server.server_address[1]
    tcp_server.shutdown()
    tcp_server.server_close()
    thread.join(5)


def dockit(env: dict[str, str], *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def summary(folder: Path) -> ET.Element:
    (xml,) = folder.glob("*.xml")
    return ET.parse(xml).getroot()


def objects(root: ET.Element, cim_class: str) -> list[dict[str, str]]:
    return [dict(element.attrib) for element in root.iter(cim_class)]


def txt_objects(summary_text: str, cim_class: str) -> list[dict[str, str]]:
    """The objects of one class in a TXT summary: `== CLASS ==` then a line of `Name=value` pairs each."""
    found, current = [], None
    for line in summary_text.splitlines():
        if line.startswith("== "):
            current = line.strip("= ")
        elif not line:
            current = None
        elif current == cim_class:
            found.append(dict(pair.split("=", 1) for pair in line.split("  ")))
    return found


def client_report(stdout: str) -> list[dict]:
    """The client's JSON lines: what it sent, whether its checksum was right, the server's answer."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def expected_records(report: list[dict]) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """The orders, cancels and logons a summary must hold, from the client's own report."""
    orders, cancels, logons = [], [], []
    for line in report:
        sent, reply = line["sent"], line["reply"]
        if sent["35"] == "D":
            status = STATUSES[reply["39"]] if reply else "unknown"
            orders.append((sent["11"], sent["55"], SIDES[sent["54"]], sent["38"], sent["44"], status,
                           reply and reply["37"], reply and reply["58"]))  # fmt: skip
        elif sent["35"] == "F":
            status = "unknown" if reply is None else "cancelled" if reply["35"] == "8" else "rejected"
            cancels.append((sent["11"], sent["41"], status, reply and reply["58"]))
        elif sent["35"] == "A":
            logons.append((sent["553"], "accepted" if reply and reply["35"] == "A" else "refused"))
    return orders, cancels, logons


def decoded_records(root: ET.Element) -> tuple[list[tuple], list[tuple], list[tuple]]:
    order_keys = ("ClOrdId", "Symbol", "Side", "Quantity", "Price", "Status", "OrderId", "Text")
    orders = [tuple(o.get(k) for k in order_keys) for o in objects(root, "Tag1_Order")]
    cancels = [
        tuple(c.get(k) for k in ("ClOrdId", "OrigClOrdId", "Status", "Text"))
        for c in objects(root, "Tag1_Cancel")
    ]
    logons = [(logon.get("User"), logon.get("Status")) for logon in objects(root, "Tag1_Logon")]
    return sorted(orders), cancels, logons


def password_pieces(write_size: int) -> list[str]:
    """The password's pieces as the client's writes of at most `write_size` bytes carried them."""
    start = len("35=A\x01553=alice\x01554=")  # where the password begins in the client's logon
    cuts = [
        0,
        *(at - start for at in range(0, start + len(PASSWORD), write_size) if at > start),
        len(PASSWORD),
    ]
    return [PASSWORD[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def assert_password_only_in_the_log(folder: Path, pieces: list[str]) -> None:
    """Each piece of the password is in the raw .log (so the check can fail), in no other output."""
    files = [path for path in folder.rglob("*") if path.is_file()]
    logs = [path for path in files if path.suffix == ".log"]
    for piece in pieces:
        assert any(piece.encode() in path.read_bytes() for path in logs), f"{piece!r} not in the raw log"
    for path in files:
        if path.suffix != ".log":
            data = path.read_bytes()
            for secret in {PASSWORD, *HALVES, *(piece for piece in pieces if len(piece) >= 5)}:
                assert secret.encode() not in data, f"{secret!r} in {path.name}"


def test_dockit_decoders_lists_the_installed_plugin(env):
    listing = dockit(env, "decoders")
    line = next(line for line in listing.stdout.splitlines() if line.startswith("tag1 "))
    assert line.split() == [
        "tag1",
        "9878",
        "plugin",
        "dockit-tag1",
        "0.1.0",
        "dockit_tag1.decoder:Tag1Decoder",
    ]
    assert "tag1" not in listing.stdout.split("not loaded:")[-1] or "not loaded:" not in listing.stdout


def test_traced_client_one_message_a_call(env, tag1_server, tmp_path):
    """Split logon, c2's checksum spoiled (the server ignores it), a reject, a cancel of each kind."""
    run = dockit(env, "-l", str(tmp_path / "run"), "--pcap", str(tmp_path / "run.pcapng"),
                 "--events", str(tmp_path / "run.jsonocel"),
                 sys.executable, "-m", "dockit_tag1.client", "--port", str(tag1_server), "--split-logon",
                 "--bad-checksum", "2", *REQUESTS)  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = client_report(run.stdout)
    assert [line["checksum_ok"] for line in report].count(False) == 1 and len(report) == len(REQUESTS) + 2
    root = summary(tmp_path)
    orders, cancels, logons = expected_records(report)
    assert decoded_records(root) == (sorted(orders), cancels, logons)
    assert ("c2", "XYZ", "sell", "5", "3", "unknown", None, None) in orders  # the spoiled one, unanswered
    (problem,) = objects(root, "Dockit_DecoderProblem")
    assert problem["Decoder"] == "tag1" and problem["Severity"] == "error"
    assert "bad checksum on a D message" in problem["Message"]
    (statistics,) = objects(root, "Dockit_Statistics")
    assert statistics["DecoderProblems"] == "0" and statistics["DecodedChannels"] == "1"
    client_pid = re.search(r"\.strace\.(\d+)\.xml$", str(next(tmp_path.glob("*.xml")))).group(1)
    for record in objects(root, "Tag1_Order") + objects(root, "Tag1_Logon") + objects(root, "Tag1_Cancel"):
        assert record["Process"] == client_pid and record["Server"] == f"127.0.0.1:{tag1_server}"
        assert record["Start"].startswith("20") and ("Latency" in record) == (record["Status"] != "unknown")
        assert record.get("Password", "<redacted>") == "<redacted>"
    notes = (tmp_path / f"run.strace.{client_pid}.txt").read_text()
    assert "# tag1: new order c1: buy 100 ACME @ 10.25" in notes and "# tag1: logon alice" in notes
    assert_password_only_in_the_log(tmp_path, list(HALVES))


def test_traced_client_pipelined_in_tiny_writes_each_call(env, tag1_server, tmp_path):
    """Every message split over 7-byte writes and sent before any answer: --each-call, TXT and JSON."""
    run = dockit(env, "-l", str(tmp_path / "run"), "--each-call", "-f", "JSON", "-F", "TXT",
                 sys.executable, "-m", "dockit_tag1.client", "--port", str(tag1_server), "--pipeline",
                 "--write-size", "7", *REQUESTS)  # fmt: skip
    assert run.returncode == 0, run.stderr
    orders, cancels, logons = expected_records(client_report(run.stdout))
    (text,) = tmp_path.glob("*.summary.txt")
    txt_orders = sorted(
        tuple(
            fields.get(k)
            for k in ("ClOrdId", "Symbol", "Side", "Quantity", "Price", "Status", "OrderId", "Text")
        )
        for fields in txt_objects(text.read_text(), "Tag1_Order")
    )
    assert txt_orders == sorted(orders)
    assert [(f["User"], f["Status"], f["Password"]) for f in txt_objects(text.read_text(), "Tag1_Logon")] == [
        (*logons[0], "<redacted>")
    ]
    # the logon went out in 7-byte writes: each of them is shown redacted, and no other call
    logon_bytes = len(f"35=A\x01553=alice\x01554={PASSWORD}\x0110=NNN\x01")
    (calls,) = tmp_path.glob("*.json")
    assert calls.read_text().count("credentials redacted") == -(-logon_bytes // 7)
    assert_password_only_in_the_log(tmp_path, password_pieces(7))
    # the log, replayed with the decoder, gives the same records as the client's report
    (log,) = tmp_path.glob("*.log")
    replayed = dockit(env, "-i", str(log), "-l", str(tmp_path / "replay" / "r"))
    assert replayed.returncode == 0, replayed.stderr
    assert decoded_records(summary(tmp_path / "replay")) == (sorted(orders), cancels, logons)


def test_traced_server(env, tmp_path):
    """dockit traces the server (it reads the requests): the same records, the server's pid."""
    command = [sys.executable, "-m", "dockit_core.cli", "-l", str(tmp_path / "srv"),
               sys.executable, "-m", "dockit_tag1.server", "--port", "0", "--once"]  # fmt: skip
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as traced:
        try:
            line = traced.stdout.readline()
            port = int(line.rsplit(":", 1)[1]) if line.startswith("listening on") else pytest.fail(line)
            client = subprocess.run(
                [sys.executable, "-m", "dockit_tag1.client", "--port", str(port), "--split-logon", *REQUESTS],
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert client.returncode == 0, client.stderr
            traced.wait(60)
        finally:
            if traced.poll() is None:
                traced.kill()
        assert traced.returncode == 0, traced.stderr.read()
    report = client_report(client.stdout)
    root = summary(tmp_path)
    orders, cancels, logons = expected_records(report)
    assert decoded_records(root) == (sorted(orders), cancels, logons)
    server_pids = {p.get("Handle") or p.get("ProcessId") for p in root.iter("CIM_Process")}
    assert {o["Process"] for o in objects(root, "Tag1_Order")} <= server_pids
    assert_password_only_in_the_log(tmp_path, list(HALVES))


CONTRACT_ONLY = '''
from dockit_tag1.decoder import Tag1Decoder


class ContractOnly(Tag1Decoder):
    """One Secret naming the logon's first call when the logon is whole, and reading_since: the docs' way."""

    eager_secrets = False
'''


def test_pcap_hides_a_split_logon_named_as_the_docs_ask(env, tag1_server, tmp_path):
    run = dockit(env, "-l", str(tmp_path / "live" / "run"), sys.executable, "-m", "dockit_tag1.client",
                 "--port", str(tag1_server), "--split-logon", "buy 1 ACME 1")  # fmt: skip
    assert run.returncode == 0, run.stderr
    (log,) = (tmp_path / "live").glob("*.log")
    (tmp_path / "contract_only.py").write_text(CONTRACT_ONLY)
    env = {**env, "PYTHONPATH": os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])}
    pcap = tmp_path / "replay.pcapng"
    replay = dockit(env, "--decoder", "contract_only:ContractOnly", "-i", str(log), "-l", str(tmp_path / "r"),
                    "--each-call", "--pcap", str(pcap))  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    assert (tmp_path / "r.txt").read_text().count("credentials redacted") == 2  # the calls file honours it
    for half in HALVES:
        assert half.encode() not in pcap.read_bytes(), f"{half!r} in the pcapng"


@pytest.fixture
def loopback_capture(tmp_path, tag1_server):
    """tshark capturing the server's port on loopback while the test runs: the independent witness."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (setup.sh installs it)")
    pcap = tmp_path / "wire.pcapng"
    command = ["tshark", "-i", "lo", "-f", f"tcp port {tag1_server}", "-w", str(pcap)]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as tshark:
        try:
            for line in tshark.stderr:  # "Capturing on 'Loopback: lo'" once it listens
                if "Capturing on" in line:
                    break
            else:
                pytest.skip(f"tshark could not capture on lo (exit {tshark.wait()})")

            def stop() -> Path:
                tshark.terminate()  # tshark writes its last packets as it ends
                tshark.wait(30)
                return pcap

            yield stop
        finally:
            if tshark.poll() is None:
                tshark.terminate()
                tshark.wait(30)


def wire_messages(pcap: Path, port: int) -> list[bytes]:
    """The client's messages as tshark saw them cross loopback, split here by the protocol's rules."""
    fields = [
        "tshark",
        "-r",
        str(pcap),
        "-Y",
        f"tcp.dstport == {port} && tcp.len > 0",
        "-T",
        "fields",
        "-e",
        "tcp.payload",
    ]
    payload = b"".join(
        bytes.fromhex(line)
        for line in subprocess.run(fields, capture_output=True, text=True, check=True).stdout.split()
    )
    return re.findall(rb"35=.\x01.*?(?<=\x01)10=\d\d\d\x01", payload, re.DOTALL)


def test_every_request_tshark_saw_is_in_the_summary(env, tag1_server, loopback_capture, tmp_path):
    run = dockit(env, "-l", str(tmp_path / "run"), sys.executable, "-m", "dockit_tag1.client", "--port",
                 str(tag1_server), "--pipeline", "--write-size", "30", *REQUESTS)  # fmt: skip
    assert run.returncode == 0, run.stderr
    time.sleep(0.5)  # the last packets reach tshark
    wire = wire_messages(loopback_capture(), tag1_server)
    messages = [dict(f.split(b"=", 1) for f in m.split(b"\x01") if b"=" in f) for m in wire]
    assert [m[b"35"] for m in messages] == [b"A", b"D", b"D", b"D", b"F", b"F", b"D", b"5"]
    root = summary(tmp_path)
    orders = {(o["ClOrdId"], o["Symbol"], o["Quantity"], o["Price"]) for o in objects(root, "Tag1_Order")}
    for message in messages:
        if message[b"35"] == b"D":
            assert (
                message[b"11"].decode(),
                message[b"55"].decode(),
                message[b"38"].decode(),
                message[b"44"].decode(),
            ) in orders
    cancels = {(c["ClOrdId"], c["OrigClOrdId"]) for c in objects(root, "Tag1_Cancel")}
    assert cancels == {(m[b"11"].decode(), m[b"41"].decode()) for m in messages if m[b"35"] == b"F"}
    assert [logon["User"] for logon in objects(root, "Tag1_Logon")] == [messages[0][b"553"].decode()]
