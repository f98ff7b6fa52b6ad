"""Wireshark as the independent check of the broker decoders: tshark captures the loopback while dockit
traces the same clients live, and every AMQP method and MQTT packet tshark's dissectors show on the
traced connections is in dockit's summary, with the same count; so are the routing keys and topics.
NATS has no dissector in tshark: its TCP payloads are read as the protocol's text lines by the small
reader below (an operation word per line, and for PUB, HPUB, MSG and HMSG the payload size the line
names), which shares no code with dockit.

The connections compared are the traced client's only (their ports come from the summary's sessions):
other programs may use the same brokers while the test runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from tests.broker_facts import (
    Facts,
    facts_of_xml,
    unique_tag,
)
from tests.broker_fixtures import (
    AMQP_PORT,
    MQTT_PORT,
    NATS_PORT,
    Login,
    need_server,
    new_password,
    rabbitmq_login,
)
from tests.conftest import CAPTURES, load_capture_module, run_dockit

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark (Debian package tshark)"),
    pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace"),
    pytest.mark.skipif(os.geteuid() != 0, reason="capturing the loopback needs root"),
]
CLIENTS = str(CAPTURES / "broker_clients.py")
# MQTT control packet types, as the MQTT specification numbers them (2.1.2).
MQTT_TYPES = {
    1: "CONNECT",
    2: "CONNACK",
    3: "PUBLISH",
    4: "PUBACK",
    5: "PUBREC",
    6: "PUBREL",
    7: "PUBCOMP",
    8: "SUBSCRIBE",
    9: "SUBACK",
    10: "UNSUBSCRIBE",
    11: "UNSUBACK",
    12: "PINGREQ",
    13: "PINGRESP",
    14: "DISCONNECT",
    15: "AUTH",
}


@pytest.fixture(scope="module")
def rabbitmq_user() -> Iterator[Login]:
    with rabbitmq_login() as login:
        yield login


class Capture:
    """tshark on the loopback, writing a pcap, for the time of a `with` block."""

    def __init__(self, path: Path, ports: tuple[int, ...]) -> None:
        self.path = path
        self.filter = " or ".join(f"tcp port {port}" for port in ports)

    def __enter__(self) -> Capture:
        self.errors = open(self.path.with_suffix(".err"), "w+")  # noqa: SIM115 - closed in __exit__
        self.process = subprocess.Popen(
            ["tshark", "-q", "-i", "lo", "-f", self.filter, "-w", str(self.path)],
            stdout=subprocess.DEVNULL,
            stderr=self.errors,
        )
        deadline = time.monotonic() + 30
        while "Capturing on" not in self.path.with_suffix(".err").read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tshark did not start: {self.path.with_suffix('.err').read_text()}")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        time.sleep(0.5)  # the last segments reach the capture
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.errors.close()

    def pdml(self, ports: set[int], protocol: str) -> etree._Element:
        display = f"{protocol} and ({' or '.join(f'tcp.port == {p}' for p in sorted(ports))})"
        result = subprocess.run(
            ["tshark", "-r", str(self.path), "-Y", display, "-T", "pdml"],
            capture_output=True,
            check=True,
            timeout=120,
        )
        return etree.fromstring(result.stdout)

    def payloads(self, ports: set[int]) -> dict[tuple[int, int], bytes]:
        """The TCP payload bytes of each connection and direction: (stream, source port) -> bytes."""
        display = f"tcp.len > 0 and ({' or '.join(f'tcp.port == {p}' for p in sorted(ports))})"
        result = subprocess.run(
            [
                "tshark",
                "-r",
                str(self.path),
                "-Y",
                display,
                "-T",
                "fields",
                "-e",
                "tcp.stream",
                "-e",
                "tcp.srcport",
                "-e",
                "tcp.payload",
            ],
            capture_output=True,
            check=True,
            text=True,
            timeout=120,
        )
        streams: dict[tuple[int, int], bytes] = {}
        for line in result.stdout.splitlines():
            stream, port, payload = line.split("\t")
            key = (int(stream), int(port))
            streams[key] = streams.get(key, b"") + bytes.fromhex(payload.replace(":", ""))
        return streams


def traced(
    tmp_path: Path, command: list[str], password: str, ports: tuple[int, ...]
) -> tuple[Facts, Capture]:
    capture = Capture(tmp_path / "loopback.pcap", ports)
    env = dict(os.environ, DOCKIT_CAPTURE_PASSWORD=password)
    with capture:
        result = run_dockit("-l", str(tmp_path / "run"), *command, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    (xml,) = tmp_path.glob("run.strace.*.xml")
    return facts_of_xml(etree.parse(str(xml)).getroot()), capture


def client_ports(facts: Facts, server_port: int) -> set[int]:
    """The client ends of the traced connections, from the sessions' ids (`tcp:A:p-B:q`)."""
    ports = set()
    for session in facts.sessions:
        ends = session["Id"].removeprefix("tcp:").split("-")
        ports |= {int(end.rsplit(":", 1)[1]) for end in ends} - {server_port}
    assert ports
    return ports


def summed(commands: list[dict[str, int]], *leave_out: str) -> Counter:
    total: Counter = Counter()
    for session in commands:
        total.update({name: count for name, count in session.items() if name not in leave_out})
    return total


def showname(field: etree._Element) -> str:
    """`Class: Basic (60)` -> `basic`; `Method: Get-Ok (71)` -> `get-ok`."""
    text = field.get("showname").split(": ", 1)[1]
    return text.rsplit(" (", 1)[0].lower()


def test_amqp_methods_match_tshark(tmp_path, rabbitmq_user):
    need_server(AMQP_PORT)
    tag = unique_tag("dockit_ta")
    command = [sys.executable, CLIENTS, "amqp", str(AMQP_PORT), tag, rabbitmq_user.user]
    facts, capture = traced(tmp_path, command, rabbitmq_user.password, (AMQP_PORT,))
    facts = facts.of("amqp")
    ports = client_ports(facts, AMQP_PORT)
    seen: Counter = Counter()
    keys: Counter = Counter()
    for proto in capture.pdml(ports, "amqp").iter("proto"):
        if proto.get("name") != "amqp":
            continue
        fields = {f.get("name"): f for f in proto.iter("field")}
        if "amqp.method.class" not in fields:
            continue  # a content header, a body, a heartbeat
        name = f"{showname(fields['amqp.method.class'])}.{showname(fields['amqp.method.method'])}"
        seen[name] += 1
        if "amqp.method.arguments.routing_key" in fields:
            keys[(name, fields["amqp.method.arguments.routing_key"].get("show"))] += 1
    assert seen["basic.publish"] == 7 and seen["basic.deliver"] == 2  # the scenario's own, seen by tshark
    assert summed(facts.commands, "protocol-header", "heartbeat") == seen
    # Routing keys: each publish is a publish message, each deliver or get-ok a delivered one, each
    # return the returned publish, each queue.bind a binding, with the same key.
    found: Counter = Counter()
    for message in facts.message_objects:
        if message["Direction"] == "publish":
            found[("basic.publish", message["RoutingKey"])] += 1
        else:
            method = "basic.deliver" if "ConsumerTag" in message else "basic.get-ok"
            found[(method, message["RoutingKey"])] += 1
        if message.get("Ack") == "returned":
            found[("basic.return", message["RoutingKey"])] += 1
    for attrs, _ in facts.operation_objects:
        if attrs["Operation"] == "queue.bind":
            found[("queue.bind", attrs["RoutingKey"])] += 1
    assert found == keys


@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="needs mosquitto-clients")
@pytest.mark.parametrize("client", ["paho5", "paho311", "mosquitto"])
def test_mqtt_packets_match_tshark(tmp_path, client):
    need_server(MQTT_PORT)
    tag = unique_tag(f"dockit_tm{client}")
    password = new_password()
    if client == "mosquitto":
        script = load_capture_module("record_brokers").mosquitto_script(tag, password)
        (tmp_path / "clients.sh").write_text(script)
        command = ["sh", "clients.sh"]
    else:
        scenario = "mqtt5" if client == "paho5" else "mqtt4"
        command = [sys.executable, CLIENTS, scenario, str(MQTT_PORT), tag, "dockit_tester"]
    facts, capture = traced(tmp_path, command, password, (MQTT_PORT,))
    facts = facts.of("mqtt")
    ports = client_ports(facts, MQTT_PORT)
    seen: Counter = Counter()
    topics: Counter = Counter()
    for proto in capture.pdml(ports, "mqtt").iter("proto"):
        if proto.get("name") != "mqtt":
            continue
        fields = {f.get("name"): f.get("show") for f in proto.iter("field")}
        kind = MQTT_TYPES[int(fields["mqtt.msgtype"])]
        seen[kind] += 1
        if kind == "PUBLISH":
            topics[fields["mqtt.topic"]] += 1
    assert seen["PUBLISH"] >= 7
    assert summed(facts.commands) == seen
    assert Counter(m["Destination"] for m in facts.message_objects) == topics


def nats_operations(stream: bytes) -> Counter:
    """The operations of one direction of a NATS connection: a line's first word; after PUB, HPUB,
    MSG or HMSG, the payload (its size is the line's last number) and its CRLF are skipped."""
    found: Counter = Counter()
    pos = 0
    while pos < len(stream):
        end = stream.index(b"\r\n", pos)
        words = stream[pos:end].split()
        pos = end + 2
        if not words:
            continue
        word = words[0].decode().upper()
        found[word] += 1
        if word in ("PUB", "HPUB", "MSG", "HMSG"):
            pos += int(words[-1]) + 2
    return found


def test_nats_operations_match_the_tcp_payloads(tmp_path):
    need_server(NATS_PORT)
    tag = unique_tag("dockit_tn")
    command = [sys.executable, CLIENTS, "nats", str(NATS_PORT), tag, "dockit_tester"]
    facts, capture = traced(tmp_path, command, new_password(), (NATS_PORT,))
    facts = facts.of("nats")
    seen: Counter = Counter()
    for stream in capture.payloads(client_ports(facts, NATS_PORT)).values():
        seen.update(nats_operations(stream))
    assert seen["PUB"] + seen["HPUB"] >= 10 and seen["MSG"] + seen["HMSG"] >= 10
    assert summed(facts.commands) == seen
