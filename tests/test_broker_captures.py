"""The broker captures (recorded by captures/record_brokers.py) replay to the facts of
captures/BROKER_FACTS.md, the same facts the live tests check (tests/broker_facts.py).

Each test runs twice: on the committed captures, and on the five recorded again now into a temporary
folder (tag, RabbitMQ user and password of their own). The summary dockit wrote while tracing live is
kept beside each log (`<name>.live.xml`), and the replay of the log must give the same broker objects:
every Dockit_Message, Dockit_BrokerOperation, Dockit_BrokerSession and Dockit_MessageDestination,
attribute for attribute.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from tests.broker_facts import (
    Facts,
    check_amqp,
    check_mosquitto,
    check_mqtt,
    check_nats,
    facts_of_xml,
    unique_tag,
)
from tests.broker_fixtures import AMQP_PORT, MQTT_PORT, NATS_PORT, listening
from tests.conftest import CAPTURES, load_capture_module, run_dockit

recorder = load_capture_module("record_brokers")
NAMES = recorder.NAMES
BROKER_CLASSES = (
    "Dockit_Message",
    "Dockit_BrokerOperation",
    "Dockit_BrokerSession",
    "Dockit_MessageDestination",
)
COMMITTED_RABBITMQ = "3.10.8"  # the RabbitMQ that answered when the committed captures were recorded


@dataclass
class Replayed:
    name: str
    tag: str
    user: str
    password: str
    root: etree._Element
    facts: Facts
    outputs: dict[str, str]
    statistics: dict[str, str]
    live: etree._Element  # the summary dockit wrote while recording


def replay(log: Path, out: Path, name: str, settings, live: Path) -> Replayed:  # type: ignore[no-untyped-def]
    prefix = out / name
    result = run_dockit("-i", str(log), "-l", str(prefix))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    xml = Path(f"{prefix}.xml")
    root = etree.parse(str(xml)).getroot()
    statistics = root.find("Dockit_Statistics")
    return Replayed(
        name=name,
        tag=settings.tag,
        user=settings.user,
        password=settings.password,
        root=root,
        facts=facts_of_xml(root),
        outputs={
            "summary": xml.read_text(),
            "calls": Path(f"{prefix}.txt").read_text(),
            "run": result.stdout + result.stderr,
            "ini": log.with_suffix(".ini").read_text(),
        },
        statistics=dict(statistics.attrib) if statistics is not None else {},
        live=etree.parse(str(live)).getroot(),
    )


def capture_log(name: str, folder: Path) -> Path:
    logs = sorted(folder.glob(f"{name}.strace.*.log"))
    assert len(logs) == 1, f"expected one log for {name} in {folder}, found {logs}"
    return logs[0]


@pytest.fixture(scope="module", params=["committed", "recorded-now"])
def captures(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Replayed]:
    out = tmp_path_factory.mktemp("broker_captures")
    if request.param == "committed":
        settings = recorder.Settings()
        return {
            name: replay(capture_log(name, CAPTURES), out, name, settings, CAPTURES / f"{name}.live.xml")
            for name in NAMES
        }
    missing = [tool for tool in ("strace", "rabbitmqctl", "mosquitto_pub") if shutil.which(tool) is None]
    missing += [f"a server on {port}" for port in (AMQP_PORT, MQTT_PORT, NATS_PORT) if not listening(port)]
    if missing:
        pytest.skip(f"recording needs {', '.join(missing)}")
    tag = unique_tag("dockit_rc")
    settings = recorder.Settings(tag=tag, user=tag, password="Rc-" + tag[-8:] + "-pw", work=out / "work")
    folder = out / "recorded"
    folder.mkdir()
    logs = recorder.record_all([], folder, settings)
    return {name: replay(log, out, name, settings, folder / f"{name}.live.xml") for name, log in logs.items()}


@pytest.mark.parametrize("name", NAMES)
def test_replay_is_clean(captures, name):
    replayed = captures[name]
    assert replayed.statistics["UnparsedLines"] == "0"
    assert replayed.statistics["ResumedWithoutStart"] == "0"
    assert replayed.statistics["DecoderProblems"] == "0"


def test_amqp_pika(captures):
    replayed = captures["amqp_pika"]
    version = COMMITTED_RABBITMQ if replayed.tag == recorder.TAG else None
    check_amqp(replayed.facts, replayed.tag, replayed.user, version)


@pytest.mark.parametrize(("name", "level"), [("mqtt_paho311", 4), ("mqtt_paho5", 5)])
def test_mqtt_paho(captures, name, level):
    replayed = captures[name]
    check_mqtt(replayed.facts, replayed.tag, replayed.user, level)


def test_mqtt_mosquitto_clients(captures):
    replayed = captures["mqtt_mosquitto"]
    check_mosquitto(replayed.facts, replayed.tag)
    pids = {s["Process"] for s in replayed.facts.sessions}
    assert len(pids) == 6  # one mosquitto_pub or mosquitto_sub process per session


def test_nats_py(captures):
    replayed = captures["nats_py"]
    check_nats(replayed.facts, replayed.tag, replayed.user)


@pytest.mark.parametrize("name", NAMES)
def test_password_in_no_output(captures, name):
    replayed = captures[name]
    for output, text in replayed.outputs.items():
        assert replayed.password not in text, output


@pytest.mark.parametrize("name", NAMES)
def test_calls_file_notes_each_message(captures, name):
    """Beside the calls that carried them, one note per method, packet or operation: the calls file
    keeps the first 50 of a connection's block and counts the others (`# ... N more`)."""
    replayed = captures[name]
    protocol = "amqp" if name.startswith("amqp") else "mqtt" if name.startswith("mqtt") else "nats"
    notes = Counter(re.findall(rf"# {protocol} (\S+)", replayed.outputs["calls"]))
    more = sum(int(n) for n in re.findall(r"# \.\.\. (\d+) more", replayed.outputs["calls"]))
    commands: Counter = Counter()
    for session in replayed.facts.commands:
        commands.update(session)
    for framing in ("protocol-header", "heartbeat"):
        commands.pop(framing, None)
    assert notes and all(count <= commands[note] for note, count in notes.items())
    assert sum(notes.values()) + more == sum(commands.values())


@pytest.mark.parametrize("name", NAMES)
def test_replay_gives_the_live_objects(captures, name):
    replayed = captures[name]

    def objects(root: etree._Element) -> list[bytes]:
        return [etree.tostring(e) for e in root if e.tag in BROKER_CLASSES]

    live, again = objects(replayed.live), objects(replayed.root)
    assert live and live == again
