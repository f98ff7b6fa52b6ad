"""dockit tracing real broker clients live, against the machine's RabbitMQ (5672), Mosquitto (1883) and
NATS with JetStream (4222): `python -m dockit_core.cli -l PREFIX COMMAND...` as a user runs it.

The clients: pika, paho-mqtt (3.1.1 and 5) and nats-py running the scenarios of
captures/broker_clients.py, and Debian's `mosquitto_pub` / `mosquitto_sub`. Each test states the
destinations, counts, QoS and statuses it expects (tests/broker_facts.py), uses names of its own, and
the scenarios delete what they create. The passwords are the tests' own and must be in no output but
the raw .log.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from tests.broker_facts import (
    check_amqp,
    check_mosquitto,
    check_mqtt,
    check_nats,
    facts_of_xml,
    unique_tag,
)
from tests.broker_fixtures import (
    AMQP_PORT,
    MQTT_PORT,
    NATS_PORT,
    Login,
    login_for,
    need_server,
    new_password,
    rabbitmq_login,
    rabbitmq_version,
)
from tests.conftest import CAPTURES, load_capture_module, run_dockit

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace"),
]
CLIENTS = str(CAPTURES / "broker_clients.py")


@pytest.fixture(scope="module")
def rabbitmq_user() -> Iterator[Login]:
    with rabbitmq_login() as login:
        yield login


@pytest.fixture(scope="module")
def broker_password() -> str:
    return new_password()


class Run:
    """One `dockit -l PREFIX COMMAND` run: its outputs."""

    def __init__(self, prefix: Path, result) -> None:  # type: ignore[no-untyped-def]
        self.result = result
        assert "Traceback" not in result.stderr, result.stderr
        (xml,) = sorted(prefix.parent.glob(prefix.name + ".strace.*.xml"))
        self.xml_path = xml
        self.root = etree.parse(str(xml)).getroot()
        self.facts = facts_of_xml(self.root)
        base = str(xml)[: -len(".xml")]
        self.outputs = {
            path.name: path.read_text(errors="replace")
            for path in (Path(base + ".xml"), Path(base + ".txt"), Path(base + ".ini"))
        }
        self.outputs["stdout+stderr"] = result.stdout + result.stderr
        self.log = Path(base + ".log").read_bytes()
        statistics = self.root.find("Dockit_Statistics")
        self.statistics = dict(statistics.attrib) if statistics is not None else {}


def trace(tmp_path: Path, name: str, command: list[str], password: str | None = None, *options: str) -> Run:
    prefix = tmp_path / name
    env = dict(os.environ)
    if password is not None:
        env["DOCKIT_CAPTURE_PASSWORD"] = password
    result = run_dockit("-l", str(prefix), *options, *command, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return Run(prefix, result)


def scenario(name: str, port: int, tag: str, login: Login) -> list[str]:
    return [sys.executable, CLIENTS, name, str(port), tag, login.user]


def assert_no_password(run: Run, password: str) -> None:
    for output, text in run.outputs.items():
        assert password not in text, output
    assert password.encode() in run.log  # the raw trace keeps it: it really crossed the socket
    assert run.statistics.get("DecoderProblems") == "0"


def test_pika_against_rabbitmq(tmp_path, rabbitmq_user):
    need_server(AMQP_PORT)
    tag = unique_tag("dockit_la")
    run = trace(tmp_path, "amqp", scenario("amqp", AMQP_PORT, tag, rabbitmq_user), rabbitmq_user.password)
    check_amqp(run.facts, tag, rabbitmq_user.user, rabbitmq_version())
    (session,) = run.facts.sessions
    assert session["Server"] == f"127.0.0.1:{AMQP_PORT}"
    assert_no_password(run, rabbitmq_user.password)
    assert "k-secret-4be1" not in run.outputs[run.xml_path.name]  # a header value named like a key
    calls = run.outputs[run.xml_path.with_suffix(".txt").name]
    assert f"# amqp basic.publish exchange={tag}.x routing-key=dockit.rk" in calls


def test_pika_each_call_hides_the_login(tmp_path, rabbitmq_user):
    """With --each-call the calls file shows buffers: the one carrying connection.start-ok (PLAIN user
    and password) is shown without them."""
    need_server(AMQP_PORT)
    tag = unique_tag("dockit_le")
    run = trace(
        tmp_path,
        "each",
        scenario("amqp", AMQP_PORT, tag, rabbitmq_user),
        rabbitmq_user.password,
        "--each-call",
    )
    calls = run.outputs[run.xml_path.with_suffix(".txt").name]
    assert "<credentials redacted>" in calls
    assert_no_password(run, rabbitmq_user.password)


@pytest.mark.parametrize("level", [4, 5])
def test_paho_against_mosquitto(tmp_path, broker_password, level):
    need_server(MQTT_PORT)
    tag = unique_tag(f"dockit_lm{level}")
    login = login_for("mqtt", None, broker_password)
    run = trace(tmp_path, f"mqtt{level}", scenario(f"mqtt{level}", MQTT_PORT, tag, login), broker_password)
    check_mqtt(run.facts, tag, login.user, level)
    assert_no_password(run, broker_password)
    assert "k-secret-4be1" not in run.outputs[run.xml_path.name]


def test_nats_py_against_nats_with_jetstream(tmp_path, broker_password):
    need_server(NATS_PORT)
    tag = unique_tag("dockit_ln")
    login = login_for("nats", None, broker_password)
    run = trace(tmp_path, "nats", scenario("nats", NATS_PORT, tag, login), broker_password)
    check_nats(run.facts, tag, login.user)
    assert_no_password(run, broker_password)
    assert "k-secret-4be1" not in run.outputs[run.xml_path.name]


@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="needs mosquitto-clients")
def test_mosquitto_pub_and_sub(tmp_path, broker_password):
    """One shell script traced with -f: a retained message, a subscriber (mosquitto_sub, QoS 1, four messages)
    that first receives it, three publishers at QoS 0, 1 and 2 (the last with a password on its
    command line), then the retained message cleared."""
    need_server(MQTT_PORT)
    tag = unique_tag("dockit_lq")
    script = load_capture_module("record_brokers").mosquitto_script(tag, broker_password)
    (tmp_path / "clients.sh").write_text(script)  # a file: the password is in mosquitto_pub's argv only
    run = trace(tmp_path, "mosquitto", ["sh", "clients.sh"])
    assert (tmp_path / "received.txt").read_text().split("\n")[:4] == [
        f"{tag}/ready r",
        f"{tag}/x one",
        f"{tag}/y two",
        f"{tag}/z three",
    ]
    check_mosquitto(run.facts, tag)
    assert_no_password(run, broker_password)
