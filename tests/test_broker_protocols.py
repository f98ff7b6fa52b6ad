"""The pure wire formats of protocols/amqp.py, protocols/mqtt.py and protocols/nats.py, field by field,
on real bytes pinned as hex (recorded from RabbitMQ 3.10.8 with pika 1.4.4, Mosquitto 2.0.11 with
mosquitto_pub, nats-server 2.9.10 with nats-py 2.16.0, through tests/relay.py), and on frames the
builders make (round trips). Cut payloads give what was read, never an exception.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import amqp, mqtt, nats

# -- AMQP 0-9-1 ---------------------------------------------------------------------------------------------
# pika publishing b"hello" to amq.topic with routing key dockit.pin, content type text/plain, delivery
# mode 2 and a header trace=abc: the method frame, the content header, the body.
PUBLISH = bytes.fromhex("0100010000001c003c0028000009616d712e746f7069630a646f636b69742e70696e00ce")
CONTENT_HEADER = bytes.fromhex(
    "0200010000002c003c00000000000000000005b0000a746578742f706c61696e0000000e057472616365530000000361626302ce"
)
BODY = bytes.fromhex("0300010000000568656c6c6fce")
TUNE = bytes.fromhex("0100000000000c000a001e07ff00020000003cce")  # connection.tune from RabbitMQ
CHANNEL_CLOSE = bytes.fromhex("0100010000001a0014002800c80f4e6f726d616c2073687574646f776e00000000ce")
# connection.start-ok from pika, PLAIN, user guest, password guest (the frame's end: mechanism, response)
START_OK_TAIL = bytes.fromhex("05504c41494e0000000c00677565737400677565737405656e5f5553")


def payload(frame: bytes) -> bytes:
    kind, channel, body, ends_well = amqp.frame_fields(frame)  # type: ignore[misc]
    assert ends_well
    return body


def test_amqp_frame_header_and_end():
    assert amqp.measure_frame(PUBLISH) == len(PUBLISH)
    assert amqp.frame_fields(PUBLISH)[:2] == (amqp.FRAME_METHOD, 1)
    assert amqp.looks_like_frame(PUBLISH) is True
    assert amqp.looks_like_frame(PUBLISH[:-1] + b"\x00") is False  # the end octet is not 0xCE
    assert amqp.looks_like_frame(PUBLISH[:10]) is None  # too few bytes to tell
    assert amqp.measure_frame(amqp.PROTOCOL_HEADER) == 8
    assert amqp.measure_frame(b"AMQ") is None and amqp.measure_frame(b"AMX") == -1
    assert amqp.measure_frame(b"\x07") == -1  # no frame type 7


def test_amqp_publish_method():
    method = amqp.parse_method(payload(PUBLISH))
    assert method is not None and method.complete
    assert (method.name, method.arguments) == (
        "basic.publish",
        {
            "reserved-1": 0,
            "exchange": "amq.topic",
            "routing-key": "dockit.pin",
            "mandatory": False,
            "immediate": False,
        },
    )


def test_amqp_content_header_with_properties():
    header = amqp.parse_content_header(payload(CONTENT_HEADER))
    assert header is not None and header.complete
    assert (header.class_id, header.body_size) == (60, 5)
    assert header.properties == {
        "content-type": "text/plain",
        "headers": {"trace": "abc"},
        "delivery-mode": 2,
    }
    assert payload(BODY) == b"hello"


def test_amqp_tune_and_close():
    tune = amqp.parse_method(payload(TUNE))
    assert tune is not None
    assert (tune.name, tune.arguments) == (
        "connection.tune",
        {"channel-max": 2047, "frame-max": 131072, "heartbeat": 60},
    )
    close = amqp.parse_method(payload(CHANNEL_CLOSE))
    assert close is not None
    assert close.arguments == {
        "reply-code": 200,
        "reply-text": "Normal shutdown",
        "class-id": 0,
        "method-id": 0,
    }


def test_amqp_login_user_never_the_password():
    mechanism_size = START_OK_TAIL[0]
    mechanism = START_OK_TAIL[1 : 1 + mechanism_size].decode()
    size = int.from_bytes(START_OK_TAIL[1 + mechanism_size : 5 + mechanism_size], "big")
    response = START_OK_TAIL[5 + mechanism_size : 5 + mechanism_size + size]
    assert (mechanism, response) == ("PLAIN", b"\x00guest\x00guest")
    assert amqp.login_user("PLAIN", b"\x00alice\x00s3cret") == "alice"
    table = amqp.encode_table({"LOGIN": "bob", "PASSWORD": "pw"})[4:]  # AMQPLAIN: a table without its size
    assert amqp.login_user("AMQPLAIN", table) == "bob"
    assert amqp.login_user("EXTERNAL", b"") is None


def test_amqp_cut_method_gives_what_was_read():
    method = amqp.parse_method(payload(PUBLISH)[:12])
    assert method is not None and not method.complete
    assert method.name == "basic.publish" and method.arguments == {"reserved-1": 0}
    assert amqp.parse_method(b"\x00") is None
    unknown = amqp.parse_method(b"\x00\x63\x00\x01")
    assert unknown is not None and unknown.name == "99.1" and not unknown.complete


def test_amqp_field_table_types():
    table = {"b": True, "n": -5, "s": "text", "x": b"\x00\x01", "t": {"inner": 1}, "a": [1, "two"], "v": None}
    header = amqp.build_content(1, b"", headers=table)
    parsed = amqp.parse_content_header(payload(header))
    assert parsed is not None and parsed.properties["headers"] == table


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        (
            "queue.declare",
            {"queue": "q1", "durable": True, "auto_delete": True, "arguments": {"x-max-length": 10}},
        ),
        ("basic.consume", {"queue": "q1", "consumer_tag": "c", "no_ack": True, "exclusive": True}),
        (
            "basic.deliver",
            {
                "consumer_tag": "c",
                "delivery_tag": 2**40,
                "redelivered": True,
                "exchange": "e",
                "routing_key": "k",
            },
        ),
        ("basic.nack", {"delivery_tag": 7, "multiple": True, "requeue": False}),
        ("exchange.bind", {"destination": "d", "source": "s", "routing_key": "#"}),
        ("connection.open", {"virtual_host": "/prod"}),
    ],
)
def test_amqp_methods_round_trip(name, arguments):
    method = amqp.parse_method(payload(amqp.build_method(3, name, **arguments)))
    assert method is not None and method.complete and method.name == name
    for key, value in arguments.items():
        assert method.arguments[key.replace("_", "-")] == value


def test_amqp_body_split_in_frames():
    frames = amqp.build_content(1, bytes(300_000))
    sizes = []
    pos = 0
    while pos < len(frames):
        size = amqp.measure_frame(frames, pos)
        sizes.append((frames[pos], size))
        pos += size  # type: ignore[operator]
    assert [kind for kind, _ in sizes] == [2, 3, 3, 3]
    assert sum(size - 8 for kind, size in sizes if kind == 3) == 300_000  # type: ignore[operator]


@given(st.binary(max_size=300))
def test_amqp_parsers_never_raise(data):
    amqp.parse_method(data)
    amqp.parse_content_header(data)
    amqp.measure_frame(data)
    amqp.looks_like_frame(data)
    amqp.login_user("AMQPLAIN", data)


# -- MQTT ------------------------------------------------------------------------------------------------
# mosquitto_pub -V mqttv5 -i dockit-pin -t dockit/pin -m hello -q 2 -u bob -P pw -D publish user-property k v
CONNECT5 = bytes.fromhex("102300044d51545405c2003c03210014000a646f636b69742d70696e0003626f6200027077")
CONNACK5 = bytes.fromhex("200900000622000a210014")
PUBLISH5 = bytes.fromhex("341b000a646f636b69742f70696e0001072600016b00017668656c6c6f")
PUBREC, PUBREL, PUBCOMP = bytes.fromhex("50020001"), bytes.fromhex("62020001"), bytes.fromhex("70020001")
DISCONNECT5 = bytes.fromhex("e000")


def parsed(packet: bytes, level: int = 5):
    kind, flags, body = mqtt.split_packet(packet)  # type: ignore[misc]
    return mqtt.parse_packet(kind, flags, body, level)


def test_mqtt_connect_user_but_never_the_password():
    assert mqtt.is_connect(CONNECT5) and mqtt.measure_packet(CONNECT5) == len(CONNECT5)
    connect = parsed(CONNECT5)
    assert connect == mqtt.Connect(
        protocol="MQTT",
        level=5,
        clean_start=True,
        keep_alive=60,
        client_id="dockit-pin",
        username="bob",
        has_password=True,
        properties=[("receive-maximum", 20)],
    )
    assert "pw" not in repr(connect)


def test_mqtt_connack_properties():
    assert parsed(CONNACK5) == mqtt.ConnAck(
        session_present=False, code=0, properties=[("topic-alias-maximum", 10), ("receive-maximum", 20)]
    )


def test_mqtt_publish_qos2_with_user_property():
    publish = parsed(PUBLISH5)
    assert publish == mqtt.Publish(
        topic="dockit/pin", qos=2, packet_id=1, properties=[("user-property", ("k", "v"))], payload_size=5
    )
    assert [parsed(p) for p in (PUBREC, PUBREL, PUBCOMP)] == [
        mqtt.PacketAck(mqtt.PUBREC, packet_id=1, code=0),
        mqtt.PacketAck(mqtt.PUBREL, packet_id=1, code=0),
        mqtt.PacketAck(mqtt.PUBCOMP, packet_id=1, code=0),
    ]
    assert parsed(DISCONNECT5) == mqtt.Disconnect(mqtt.DISCONNECT, code=0)
    assert parsed(PUBLISH5, level=4).payload_size == 5 + 8  # read as 3.1.1, the properties count as payload


def test_mqtt_311_subscribe_and_suback():
    subscribe = mqtt.build_packet(
        mqtt.SUBSCRIBE, b"\x00\x07" + mqtt.encode_string("a/#") + b"\x02" + mqtt.encode_string("b") + b"\x00"
    )
    assert parsed(subscribe, 4) == mqtt.Subscribe(
        packet_id=7, subscriptions=[mqtt.Subscription("a/#", 2), mqtt.Subscription("b", 0)]
    )
    assert parsed(mqtt.build_packet(mqtt.SUBACK, b"\x00\x07\x02\x80"), 4) == mqtt.SubAck(
        mqtt.SUBACK, packet_id=7, codes=[2, 0x80]
    )
    assert mqtt.reason_text(0x80, 4, mqtt.SUBACK) == "failure"
    assert mqtt.reason_text(5, 4, mqtt.CONNACK) == "not authorized" and mqtt.is_failure(5, 4, mqtt.CONNACK)
    assert mqtt.reason_text(0x87, 5) == "not authorized" and mqtt.is_failure(0x87, 5)


def test_mqtt_fixed_header_rules():
    assert mqtt.measure_packet(b"\xc0\x00") == 2  # PINGREQ
    assert mqtt.measure_packet(b"\xc1\x00") == -1  # PINGREQ's flags must be 0
    assert mqtt.measure_packet(b"\x80\x00") == -1  # SUBSCRIBE's flags must be 2
    assert mqtt.measure_packet(b"\x36\x00") == -1  # PUBLISH with QoS 3
    assert mqtt.measure_packet(b"\x30\xff\xff\xff\x7f") == 1 + 4 + mqtt.MAX_REMAINING
    assert mqtt.measure_packet(b"\x30\xff\xff\xff\xff\x01") == -1  # a fifth length byte
    assert mqtt.measure_packet(b"\x30\xff") is None


def test_mqtt_cut_connect_gives_what_was_read():
    connect = parsed(CONNECT5[:20])
    assert isinstance(connect, mqtt.Connect) and not connect.complete
    assert (connect.protocol, connect.level, connect.client_id) == ("MQTT", 5, None)


@given(st.binary(max_size=200), st.sampled_from([3, 4, 5]))
def test_mqtt_parsers_never_raise(data, level):
    mqtt.measure_packet(data)
    mqtt.is_connect(data)
    if data:
        for kind in range(16):
            mqtt.parse_packet(kind, data[0] & 0x0F, data[1:], level, len(data) + 5)


# -- NATS ------------------------------------------------------------------------------------------------
def test_nats_control_lines():
    assert nats.parse_line(b"PUB dockit.pin dockit.reply 5") == nats.Op(
        "PUB", subject="dockit.pin", reply="dockit.reply", size=5
    )
    assert nats.parse_line(b"HPUB dockit.pin dockit.reply 18 23") == nats.Op(
        "HPUB", subject="dockit.pin", reply="dockit.reply", header_size=18, size=23
    )
    assert nats.parse_line(b"sub foo.* workers 9") == nats.Op(
        "SUB", subject="foo.*", queue="workers", sid="9"
    )
    assert nats.parse_line(b"UNSUB 9 5") == nats.Op("UNSUB", sid="9", max_messages=5)
    assert nats.parse_line(b"MSG foo 9 12") == nats.Op("MSG", subject="foo", sid="9", size=12)
    assert nats.parse_line(b"HMSG _INBOX.x 4  81 81") == nats.Op(
        "HMSG", subject="_INBOX.x", sid="4", header_size=81, size=81
    )
    assert nats.parse_line(b"-ERR 'Authorization Violation'") == nats.Op(
        "-ERR", text="Authorization Violation"
    )
    assert nats.parse_line(b"PING") == nats.Op("PING") and nats.parse_line(b"+OK") == nats.Op("+OK")
    assert nats.parse_line(b"PUB foo x") is None and nats.parse_line(b"HPUB a 9 3") is None  # header > total
    assert nats.parse_line(b"GET / HTTP/1.1") is None


def test_nats_connect_credentials_never_shown():
    line = b'CONNECT {"verbose":false,"user":"ann","pass":"s3cret","name":"svc","lang":"python3","version":"2.16.0"}'
    op = nats.parse_line(line)
    assert op is not None and nats.carries_credentials(op.fields)
    assert nats.connect_summary(op.fields) == {
        "user": "ann",
        "name": "svc",
        "lang": "python3",
        "version": "2.16.0",
        "verbose": False,
    }
    assert not nats.carries_credentials({"user": "ann", "nkey": "UABC"})


def test_nats_headers_and_status():
    headers = nats.parse_headers(b"NATS/1.0\r\nA: 1\r\nNats-Msg-Id: m-1\r\n\r\n")
    assert headers == nats.Headers(None, None, [("A", "1"), ("Nats-Msg-Id", "m-1")])
    status = nats.parse_headers(b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n")
    assert (status.status, status.description) == (408, "Request Timeout")
    assert nats.parse_headers(b"NATS/1.0 503\r\n\r\n").status == 503


def test_nats_jetstream_subjects():
    assert nats.js_api("$JS.API.STREAM.CREATE.ORDERS") == nats.JsApi("STREAM.CREATE", "ORDERS")
    assert nats.js_api("$JS.API.CONSUMER.MSG.NEXT.ORDERS.worker") == nats.JsApi(
        "CONSUMER.MSG.NEXT", "ORDERS", "worker"
    )
    assert nats.js_api("$JS.API.CONSUMER.CREATE.ORDERS.c1.orders.>") == nats.JsApi(
        "CONSUMER.CREATE", "ORDERS", "c1"
    )
    assert nats.js_api("$JS.hub.API.STREAM.INFO.S") == nats.JsApi("STREAM.INFO", "S", None, "hub")
    assert nats.js_api("$JS.API.INFO") == nats.JsApi("INFO")
    assert nats.js_api("orders.new") is None
    assert nats.js_ack_subject("$JS.ACK.ORDERS.worker.2.17.9.1796285565123456789.4") == nats.JsAckSubject(
        "ORDERS", "worker", 2, 17, 9, 4
    )
    assert nats.js_ack_subject(
        "$JS.ACK.hub.ACCHASH.ORDERS.worker.1.5.5.1796285565123456789.0.tok"
    ) == nats.JsAckSubject("ORDERS", "worker", 1, 5, 5, 0, "hub")
    assert [nats.js_ack_kind(p) for p in (b"", b"+ACK", b"-NAK", b"+TERM", b"+WPI", b"?")] == [
        "ack",
        "ack",
        "nak",
        "term",
        "in-progress",
        None,
    ]


def test_nats_jetstream_requests_and_replies_summarised():
    request = b'{"name":"S","subjects":["a.>","b"],"retention":"limits","storage":"file","num_replicas":1}'
    assert nats.summarise_js_request("STREAM.CREATE", request) == [
        ("name", "S"),
        ("subjects", "a.>,b"),
        ("retention", "limits"),
        ("storage", "file"),
        ("num_replicas", 1),
    ]
    consumer = (
        b'{"stream_name":"S","config":{"durable_name":"c","ack_policy":"explicit","filter_subject":"a.>"}}'
    )
    assert nats.summarise_js_request("CONSUMER.CREATE", consumer) == [
        ("durable_name", "c"),
        ("ack_policy", "explicit"),
        ("filter_subject", "a.>"),
    ]
    assert nats.parse_js_reply(b'{"stream":"S","seq":12,"duplicate":true}') == nats.JsReply(
        True, stream="S", sequence=12, duplicate=True
    )
    error = nats.parse_js_reply(
        b'{"type":"x","error":{"code":404,"err_code":10059,"description":"stream not found"}}'
    )
    assert error == nats.JsReply(False, 404, 10059, "stream not found")
    assert nats.parse_js_reply(b"pong") is None


@given(st.binary(max_size=300))
def test_nats_parsers_never_raise(data):
    nats.parse_line(data)
    nats.parse_headers(data)
    nats.parse_js_reply(data)
    nats.summarise_js_request("STREAM.CREATE", data)
    nats.js_api(data.decode("utf-8", "replace"))
    nats.js_ack_subject(data.decode("utf-8", "replace"))
    nats.starts_operation(data)
