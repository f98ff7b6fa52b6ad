"""The AMQP, MQTT and NATS decoders, sans-IO, on real conversations: the scenarios of
captures/broker_clients.py (pika against RabbitMQ, paho-mqtt against Mosquitto in MQTT 3.1.1 and 5,
nats-py against NATS with JetStream) recorded through a relay, then fed to the decoder whole, one byte at
a time, in random splits, seen from the server's side, cut as a small `strace -s` would cut them, after
garbage, and from the middle of the connection. The facts come from tests/broker_facts.py (what each
scenario does and what the broker must answer), never from the decoder.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decoders.amqp import AmqpDecoder
from decoders.api import ChannelInfo, Chunk, Decoder, Direction
from decoders.mqtt import MqttDecoder
from decoders.nats import NatsDecoder
from decoders.records import Annotation, BrokerMessage, Secret, as_cim
from decoders.registry import Registry
from protocols import amqp, mqtt
from tests.broker_facts import (
    check_amqp,
    check_mqtt,
    check_nats,
    facts_of_outputs,
    normal,
    unique_tag,
)
from tests.broker_fixtures import (
    Login,
    login_for,
    new_password,
    rabbitmq_login,
    rabbitmq_version,
    record_scenario,
)
from tests.relay import Recording, cut, run_decoder, split

DECODERS: dict[str, type[Decoder]] = {
    "amqp": AmqpDecoder,
    "mqtt4": MqttDecoder,
    "mqtt5": MqttDecoder,
    "nats": NatsDecoder,
}
SCENARIOS = list(DECODERS)


@pytest.fixture(scope="module")
def rabbitmq_user() -> Iterator[Login]:
    with rabbitmq_login() as login:
        yield login


@pytest.fixture(scope="module")
def broker_password() -> str:
    return new_password()


@pytest.fixture(scope="module")
def recordings(rabbitmq_user: Login, broker_password: str) -> dict[str, tuple[Recording, str, Login]]:
    """Each scenario recorded once through a relay: (recording, tag, login)."""
    found = {}
    for name in SCENARIOS:
        tag = unique_tag(f"dockit_d{name}")
        login = login_for(name, rabbitmq_user, broker_password)
        found[name] = (record_scenario(name, tag, login), tag, login)
    return found


@pytest.fixture(scope="module")
def server_version() -> str:
    return rabbitmq_version()


def check(name: str, outputs: list, tag: str, login: Login, server_version: str | None = None) -> None:
    found = facts_of_outputs(outputs)
    if name == "amqp":
        check_amqp(found, tag, login.user, server_version)
    elif name == "nats":
        check_nats(found, tag, login.user)
    else:
        check_mqtt(found, tag, login.user, int(name[-1]))


def decode(
    name: str, recording: Recording, chunks: list[Chunk] | None = None, server_side: bool = False
) -> list:
    decoder = DECODERS[name](recording.channel(server_side))
    return run_decoder(decoder, chunks if chunks is not None else recording.chunks(server_side))


TIMES = ("Time", "Duration", "Start", "End")


def summary(outputs: list, times: bool = True) -> list:
    """The records as the summary would hold them, in order (annotations and secrets left out);
    without their times when `times` is false (merged chunks take the last one's time)."""
    objects = [as_cim(o) for o in outputs if not isinstance(o, (Annotation, Secret))]
    if times:
        return objects
    return [(o.cim_class, [a for a in o.attrs if a[0] not in TIMES], o.children) for o in objects]


@pytest.mark.parametrize("name", SCENARIOS)
def test_whole_conversation(name, recordings, server_version):
    recording, tag, login = recordings[name]
    check(name, decode(name, recording), tag, login, server_version)


@pytest.mark.parametrize("name", SCENARIOS)
@pytest.mark.parametrize("how", ["whole", "bytes", "random-1", "random-2", "random-3"])
def test_any_split_gives_the_same_records(name, how, recordings):
    recording, tag, login = recordings[name]
    method, _, seed = how.partition("-")
    chunks = split(recording.chunks(), method, int(seed or 0))
    outputs = decode(name, recording, chunks)
    check(name, outputs, tag, login)
    assert summary(outputs, method != "whole") == summary(decode(name, recording), method != "whole")


@pytest.mark.parametrize("name", SCENARIOS)
def test_seen_from_the_server(name, recordings):
    """The same conversation traced on the broker's side: OUT is what the broker sent."""
    recording, tag, login = recordings[name]
    check(name, decode(name, recording, server_side=True), tag, login)


@pytest.mark.parametrize("name", SCENARIOS)
def test_password_is_only_a_secret(name, recordings):
    """The login's password is in no record and no annotation; the call that carried it is a Secret."""
    recording, _, login = recordings[name]
    outputs = decode(name, recording)
    text = repr([o for o in outputs if not isinstance(o, Secret)])
    assert login.password not in text
    secrets = [o.call_index for o in outputs if isinstance(o, Secret)]
    carriers = [i for i, (_, _, data) in enumerate(recording.pieces) if login.password.encode() in data]
    assert carriers and set(carriers) <= set(secrets)


@pytest.mark.parametrize("name", SCENARIOS)
@pytest.mark.parametrize("limit", [16, 32, 64, 200])
def test_cut_buffers_never_break_the_decoder(name, limit, recordings):
    """Every buffer cut to `limit` bytes, as `strace -s limit` shows it: what is reported is a subset of
    the whole conversation's messages (same destinations), anything cut says so, nothing raises."""
    recording, _, _ = recordings[name]
    whole = facts_of_outputs(decode(name, recording))
    outputs = decode(name, recording, cut(recording.chunks(), limit))
    found = facts_of_outputs(outputs)
    destinations = {key[2] for key in whole.messages}
    assert sum(found.messages.values()) <= sum(whole.messages.values())
    for message in outputs:
        if isinstance(message, BrokerMessage):
            assert normal(message.destination) in destinations or message.truncated


@pytest.mark.parametrize("name", SCENARIOS)
def test_cut_beyond_every_call_changes_nothing(name, recordings):
    recording, tag, login = recordings[name]
    longest = max(len(data) for _, _, data in recording.pieces)
    outputs = decode(name, recording, cut(recording.chunks(), longest))
    check(name, outputs, tag, login)


@pytest.mark.parametrize("name", SCENARIOS)
def test_registry_chooses_the_decoder_from_the_first_bytes(name, recordings):
    recording, _, _ = recordings[name]
    registry = Registry.default()
    first = recording.chunks()[0]
    channel = ChannelInfo(
        channel_id="x", kind="tcp", local="127.0.0.1:40000", remote="127.0.0.1:1", remote_port=1
    )
    assert registry.choose(first.data, first.direction, channel) is DECODERS[name]


@pytest.mark.parametrize("name", SCENARIOS)
def test_attached_mid_connection(name, recordings):
    """A trace that begins after the handshake (dockit -p on a running client): the decoder is chosen
    by content or, for MQTT and NATS mid-stream, by its port; the messages after that are decoded."""
    recording, tag, _ = recordings[name]
    chunks = recording.chunks()
    start = next(i for i, c in enumerate(chunks) if tag.encode() in c.data and c.direction is Direction.OUT)
    later = chunks[start:]
    port = {"amqp": 5672, "nats": 4222}.get(name, 1883)
    channel = ChannelInfo(
        channel_id="x",
        kind="tcp",
        local="127.0.0.1:40000",
        remote=f"127.0.0.1:{port}",
        local_port=40000,
        remote_port=port,
    )
    registry = Registry.default()
    chosen = next(
        (cls for c in later[:16] if (cls := registry.choose(c.data, c.direction, channel)) is not None), None
    )
    assert chosen is DECODERS[name]
    whole = facts_of_outputs(decode(name, recording)).messages
    found = facts_of_outputs(run_decoder(chosen(channel), later)).messages
    assert found and all(whole[key] >= count for key, count in found.items())


@pytest.mark.parametrize("name", SCENARIOS)
def test_garbage_before_the_conversation(name, recordings):
    """Bytes that are no message in front of each direction: skipped, the conversation decoded."""
    recording, tag, login = recordings[name]
    chunks = recording.chunks()
    junk = b"xx garbage xx\r\n" if name == "nats" else bytes(range(0x80, 0xC0))
    polluted = [
        Chunk(data=junk, direction=d, time=chunks[0].time, pid=chunks[0].pid, size=len(junk), call_index=0)
        for d in (Direction.OUT, Direction.IN)
    ] + chunks
    outputs = decode(name, recording, polluted)
    if name == "amqp":  # the protocol header comes after the junk: found again, nothing lost
        check(name, outputs, tag, login)
    else:
        found = facts_of_outputs(outputs)
        whole = facts_of_outputs(decode(name, recording))
        assert found.messages == whole.messages


# -- exact skipping of what the tracer lost, on a long message ------------------------------------------------
def channel_to(port: int) -> ChannelInfo:
    return ChannelInfo(
        channel_id="t",
        kind="tcp",
        local="127.0.0.1:40000",
        remote=f"127.0.0.1:{port}",
        local_port=40000,
        remote_port=port,
    )


def chunk(
    data: bytes, direction: Direction = Direction.OUT, keep: int | None = None, index: int = 0
) -> Chunk:
    return Chunk(
        data=data[:keep] if keep is not None else data,
        direction=direction,
        time=100.0 + index,
        pid=7,
        size=len(data),
        call_index=index,
    )


@pytest.mark.parametrize(("body_size", "resyncs"), [(100_000, 0), (300_000, 1)])
def test_amqp_long_body_cut_by_the_tracer(body_size, resyncs):
    """`strace -s 300` keeps a publish's method and header frames and loses its body. Inside one body
    frame (100 KB, under the 128 KiB frame-max) the lost bytes are skipped exactly; across several
    frames the stream takes up again at the next call's method frame. Either way the message keeps
    its size from its header, and the next publish is decoded."""
    publish = amqp.build_method(1, "basic.publish", exchange="ex", routing_key="big") + amqp.build_content(
        1, bytes(body_size), content_type="application/octet-stream"
    )
    after = amqp.build_method(1, "basic.publish", exchange="ex", routing_key="small") + amqp.build_content(
        1, b"ok"
    )
    decoder = AmqpDecoder(channel_to(5672))
    outputs = run_decoder(
        decoder,
        [
            chunk(amqp.PROTOCOL_HEADER),
            chunk(
                amqp.build_method(0, "connection.start", version_major=0, version_minor=9),
                Direction.IN,
                index=1,
            ),
            chunk(publish, keep=300, index=2),
            chunk(after, index=3),
        ],
    )
    messages = [o for o in outputs if isinstance(o, BrokerMessage)]
    assert [(m.destination, m.size, m.truncated, m.status) for m in messages] == [
        ("ex/big", body_size, False, "unacknowledged"),
        ("ex/small", 2, False, "unacknowledged"),
    ]
    assert messages[0].properties == [("content-type", "application/octet-stream")]
    assert decoder.readers[Direction.OUT].resyncs == resyncs


def test_mqtt_long_publish_cut_by_the_tracer_is_skipped_exactly():
    connect = mqtt.build_packet(
        mqtt.CONNECT, mqtt.encode_string("MQTT") + bytes([4, 0x02, 0, 60]) + mqtt.encode_string("c1")
    )
    big = mqtt.build_packet(
        mqtt.PUBLISH, mqtt.encode_string("t/big") + b"\x00\x05" + bytes(300_000), flags=0b0010
    )
    small = mqtt.build_packet(mqtt.PUBLISH, mqtt.encode_string("t/small") + b"hi", flags=0)
    puback = mqtt.build_packet(mqtt.PUBACK, b"\x00\x05")
    outputs = run_decoder(
        MqttDecoder(channel_to(1883)),
        [
            chunk(connect),
            chunk(big, keep=64, index=1),
            chunk(small, index=2),
            chunk(puback, Direction.IN, index=3),
        ],
    )
    messages = [o for o in outputs if isinstance(o, BrokerMessage)]
    assert sorted((m.destination, m.size, m.qos, m.status, m.ack) for m in messages) == [
        ("t/big", 300_000, 1, "ok", "puback"),
        ("t/small", 2, 0, "unacknowledged", None),
    ]


def test_nats_long_payload_cut_by_the_tracer_is_skipped_exactly():
    big = b"PUB t.big 100000\r\n" + bytes(100_000) + b"\r\n"
    outputs = run_decoder(
        NatsDecoder(channel_to(4222)),
        [
            chunk(b'CONNECT {"name":"x"}\r\n'),
            chunk(big, keep=40, index=1),
            chunk(b"PUB t.small 2\r\nhi\r\n", index=2),
        ],
    )
    messages = [o for o in outputs if isinstance(o, BrokerMessage)]
    assert [(m.destination, m.size, m.truncated) for m in messages] == [
        ("t.big", 100_000, False),
        ("t.small", 2, False),
    ]


def test_mqtt5_topic_alias_is_resolved():
    props = mqtt.encode_properties([("topic-alias", 3)])
    connect = mqtt.build_packet(
        mqtt.CONNECT, mqtt.encode_string("MQTT") + bytes([5, 0x02, 0, 60, 0]) + mqtt.encode_string("c5")
    )
    first = mqtt.build_packet(mqtt.PUBLISH, mqtt.encode_string("sensors/one") + props + b"12", flags=0)
    again = mqtt.build_packet(mqtt.PUBLISH, mqtt.encode_string("") + props + b"345", flags=0)
    outputs = run_decoder(
        MqttDecoder(channel_to(1883)), [chunk(connect), chunk(first, index=1), chunk(again, index=2)]
    )
    assert [
        (m.destination, m.size, m.extra["TopicAlias"]) for m in outputs if isinstance(m, BrokerMessage)
    ] == [
        ("sensors/one", 2, 3),
        ("sensors/one", 3, 3),
    ]


def test_amqp_multiple_acks_and_the_broker_nack():
    """Publisher confirms with `multiple` (one basic.ack for three publishes) and a basic.nack."""
    frames = [chunk(amqp.PROTOCOL_HEADER), chunk(amqp.build_method(1, "confirm.select"), index=1)]
    frames.append(chunk(amqp.build_method(1, "confirm.select-ok"), Direction.IN, index=2))
    for i in range(4):
        frames.append(
            chunk(
                amqp.build_method(1, "basic.publish", exchange="", routing_key=f"q{i}")
                + amqp.build_content(1, b"x" * i),
                index=3 + i,
            )
        )
    frames.append(
        chunk(amqp.build_method(1, "basic.ack", delivery_tag=3, multiple=True), Direction.IN, index=8)
    )
    frames.append(chunk(amqp.build_method(1, "basic.nack", delivery_tag=4), Direction.IN, index=9))
    outputs = run_decoder(AmqpDecoder(channel_to(5672)), frames)
    assert [(m.destination, m.status, m.ack) for m in outputs if isinstance(m, BrokerMessage)] == [
        ("/q0", "ok", "confirm"),
        ("/q1", "ok", "confirm"),
        ("/q2", "ok", "confirm"),
        ("/q3", "error", "nack"),
    ]


def test_unacknowledged_deliveries_stay_bounded():
    """A consumer that never acknowledges: at most PENDING_LIMIT deliveries wait, the older ones are
    reported (status unknown) as newer ones come, so memory does not follow the connection's length."""
    from decoders.messaging import PENDING_LIMIT

    decoder = AmqpDecoder(channel_to(5672))
    decoder.feed(chunk(amqp.PROTOCOL_HEADER))
    reported = 0
    total = PENDING_LIMIT + 500
    for tag in range(1, total + 1):
        data = amqp.build_method(
            1, "basic.deliver", consumer_tag="c", delivery_tag=tag, exchange="", routing_key="q"
        )
        data += amqp.build_content(1, b"m")
        reported += sum(
            isinstance(o, BrokerMessage) for o in decoder.feed(chunk(data, Direction.IN, index=tag))
        )
    assert reported == 500
    assert len(decoder.channels[1].unacked) == PENDING_LIMIT
    assert (
        sum(isinstance(o, BrokerMessage) and o.status == "unknown" for o in decoder.close(None))
        == PENDING_LIMIT
    )


# -- garbage never raises -----------------------------------------------------------------------------------------
chunks_strategy = st.lists(
    st.tuples(st.binary(max_size=200), st.booleans(), st.integers(min_value=0, max_value=300)), max_size=30
)


def feed_garbage(decoder_class: type[Decoder], port: int, pieces, prefix: bytes = b"") -> None:
    decoder = decoder_class(channel_to(port))
    for index, (data, outgoing, lost) in enumerate(pieces):
        data = (prefix + data) if index == 0 else data
        decoder.feed(
            Chunk(
                data=data,
                direction=Direction.OUT if outgoing else Direction.IN,
                time=float(index),
                pid=1,
                size=len(data) + lost,
                call_index=index,
            )
        )
    decoder.close(1e9)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=chunks_strategy)
@pytest.mark.parametrize(
    ("decoder_class", "port", "prefix"),
    [
        (AmqpDecoder, 5672, amqp.PROTOCOL_HEADER),
        (
            MqttDecoder,
            1883,
            mqtt.build_packet(
                mqtt.CONNECT, mqtt.encode_string("MQTT") + bytes([5, 2, 0, 9, 0]) + mqtt.encode_string("c")
            ),
        ),
        (NatsDecoder, 4222, b"INFO {}\r\n"),
    ],
)
def test_random_bytes_never_raise(decoder_class, port, prefix, pieces):
    feed_garbage(decoder_class, port, pieces, prefix)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("name", ["amqp", "mqtt5", "nats"])
def test_mutated_conversations_never_raise(name, data, recordings):
    """The real conversation with bytes flipped, dropped or lost: decoded as far as it goes, never a
    traceback."""
    recording, _, _ = recordings[name]
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    chunks = []
    for c in recording.chunks():
        raw = bytearray(c.data)
        for _ in range(rng.randint(0, 3)):
            if raw:
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        lost = rng.choice([0, 0, 0, rng.randint(1, 50)])
        chunks.append(
            Chunk(
                data=bytes(raw),
                direction=c.direction,
                time=c.time,
                pid=c.pid,
                size=len(raw) + lost,
                call_index=c.call_index,
            )
        )
    decode(name, recording, chunks)
