"""The message-broker clients that captures/record_brokers.py and the broker tests run: fixed scenarios
with pika (AMQP 0-9-1, RabbitMQ), paho-mqtt (MQTT 3.1.1 and 5, Mosquitto) and nats-py (NATS with
JetStream), so that each run yields the same facts (captures/BROKER_FACTS.md).

    python broker_clients.py amqp PORT TAG USER [--attach]
    python broker_clients.py mqtt4 PORT TAG USER [--attach]     # MQTT 3.1.1
    python broker_clients.py mqtt5 PORT TAG USER [--attach]     # MQTT 5
    python broker_clients.py nats PORT TAG USER [--attach]

TAG names everything a scenario creates (queue `TAG.q`, exchange `TAG.x`, topics `TAG/...`, subjects
`TAG.…`, stream `TAG_S`), so runs at the same time never meet; every scenario deletes what it made.
The password comes from the environment (DOCKIT_CAPTURE_PASSWORD), so it is in no command line; the
tests check it is in no output of dockit's either.

With `--attach`, the client first imports its library, writes the file `ready` in its working folder
and waits for a tracer (TracerPid in /proc/self/status): the recorder then attaches `dockit -p PID`,
so the capture holds the protocol work and not the imports. Each scenario is one thread (paho's loop
and nats-py's asyncio loop run in the main thread), so its trace is easy to read.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

HOST = "127.0.0.1"
ROUTING_KEY = "dockit.rk"
SECRET_HEADER_VALUE = "k-secret-4be1"  # sent in a header named like a key: the summary must redact it


def password() -> str:
    return os.environ["DOCKIT_CAPTURE_PASSWORD"]


# -- AMQP 0-9-1 (pika) ------------------------------------------------------------------------------------
def run_amqp(port: int, tag: str, user: str) -> None:
    """Exchange and queue declared and bound; publisher confirms (two routed, one returned); a get
    acknowledged, a get with auto-ack, a get of an empty queue; a consumer that acks one delivery and
    nacks the other; a transaction committed and one rolled back; a passive declare the broker refuses
    (404, channel closed); the queue and exchange deleted."""
    import pika

    parameters = pika.ConnectionParameters(
        HOST,
        port,
        credentials=pika.PlainCredentials(user, password()),
        client_properties={"connection_name": f"{tag}-amqp"},
    )
    connection = pika.BlockingConnection(parameters)
    exchange, queue = f"{tag}.x", f"{tag}.q"
    channel = connection.channel()
    try:
        channel.exchange_declare(exchange, "direct", auto_delete=True)
        channel.queue_declare(queue)
        channel.queue_bind(queue, exchange, routing_key=ROUTING_KEY)
        channel.confirm_delivery()
        properties = pika.BasicProperties(
            content_type="text/plain",
            delivery_mode=2,
            headers={"x-request-id": "r-1", "x-api-key": SECRET_HEADER_VALUE},
        )
        channel.basic_publish(exchange, ROUTING_KEY, b"hello", properties)
        channel.basic_publish(exchange, ROUTING_KEY, b"hello!!")
        try:
            channel.basic_publish(exchange, "nowhere", b"lost", mandatory=True)
        except pika.exceptions.UnroutableError:
            print("returned: lost", flush=True)
        method, _, _ = channel.basic_get(queue)
        channel.basic_ack(method.delivery_tag)
        channel.basic_get(queue, auto_ack=True)
        print("empty get:", channel.basic_get(queue)[0], flush=True)
        channel.basic_publish(exchange, ROUTING_KEY, b"c1")
        channel.basic_publish(exchange, ROUTING_KEY, b"c2")
        seen = 0
        for method, _, body in channel.consume(queue, inactivity_timeout=10):
            if method is None:
                raise SystemExit("no delivery within 10 s")
            if body == b"c1":
                channel.basic_ack(method.delivery_tag)
            else:
                channel.basic_nack(method.delivery_tag, requeue=False)
            seen += 1
            if seen == 2:
                break
        channel.cancel()
        transaction = connection.channel()
        transaction.tx_select()
        transaction.basic_publish("", queue, b"tx1")
        transaction.tx_commit()
        transaction.basic_publish("", queue, b"tx2")
        transaction.tx_rollback()
        try:
            channel.queue_declare(f"{tag}.missing", passive=True)
        except pika.exceptions.ChannelClosedByBroker as error:
            print("expected error", error.reply_code, flush=True)
    finally:
        cleanup = connection.channel()
        cleanup.queue_delete(queue)
        cleanup.exchange_delete(exchange)
        connection.close()


# -- MQTT (paho-mqtt) -------------------------------------------------------------------------------------
def run_mqtt(port: int, tag: str, user: str, level: int) -> None:
    """Subscribe to `TAG/#` (QoS 2) and `TAG/solo` (QoS 0); publish QoS 0 to TAG/a, QoS 1 retained to
    TAG/b, QoS 2 to TAG/c and receive the three; unsubscribe `TAG/#`; clear the retained message (an
    empty QoS 1 retained publish); disconnect. MQTT 5 adds a content type and two user properties."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"{tag}-mqtt{level}",
        protocol=mqtt.MQTTv5 if level == 5 else mqtt.MQTTv311,
    )
    client.username_pw_set(user, password())
    client.will_set(f"{tag}/will", b"gone", qos=1)
    events: dict[str, int] = {"connected": 0, "subscribed": 0, "unsubscribed": 0, "received": 0}

    def count(name: str) -> Callable[..., None]:
        def callback(*_: object) -> None:
            events[name] += 1

        return callback

    client.on_connect = count("connected")
    client.on_subscribe = count("subscribed")
    client.on_unsubscribe = count("unsubscribed")
    client.on_message = count("received")

    def wait(done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 10
        while not done():
            if time.monotonic() > deadline:
                raise SystemExit(f"MQTT scenario stuck: {events}")
            client.loop(0.05)

    properties = None
    if level == 5:
        properties = Properties(PacketTypes.PUBLISH)
        properties.ContentType = "text/plain"
        properties.UserProperty = [("trace", "t-1"), ("api-key", SECRET_HEADER_VALUE)]
    client.connect(HOST, port, keepalive=60)
    wait(lambda: events["connected"] == 1)
    client.subscribe([(f"{tag}/#", 2), (f"{tag}/solo", 0)])
    wait(lambda: events["subscribed"] == 1)
    infos = [
        client.publish(f"{tag}/a", b"zero", qos=0, properties=properties),
        client.publish(f"{tag}/b", b"one!", qos=1, retain=True, properties=properties),
        client.publish(f"{tag}/c", b"two!!", qos=2, properties=properties),
    ]
    wait(lambda: events["received"] == 3 and all(info.is_published() for info in infos))
    client.unsubscribe(f"{tag}/#")
    wait(lambda: events["unsubscribed"] == 1)
    clear = client.publish(f"{tag}/b", b"", qos=1, retain=True)
    wait(clear.is_published)
    client.disconnect()
    wait(lambda: not client.is_connected())


# -- NATS (nats-py) ---------------------------------------------------------------------------------------
def run_nats(port: int, tag: str, user: str) -> None:
    asyncio.run(_nats(port, tag, user))


async def _nats(port: int, tag: str, user: str) -> None:
    """Core: a wildcard subscription and a queue-group one, a PUB and an HPUB (one header named like a
    credential), a request answered by our own responder, a request nobody answers (503). JetStream:
    a stream created, two messages published with acknowledgements, a durable pull consumer fetching
    two (one acked, one nak'ed), fetching the redelivered one (terminated), a fetch that times out
    (408), the info of a stream that does not exist (404), the stream deleted."""
    import nats
    from nats.js.api import StreamConfig

    connection = await nats.connect(
        f"nats://{HOST}:{port}", name=f"{tag}-nats", user=user, password=password()
    )

    async def respond(message) -> None:  # type: ignore[no-untyped-def]
        if message.reply:
            await connection.publish(message.reply, b"pong")

    await connection.subscribe(f"{tag}.>", cb=respond)
    await connection.subscribe(f"{tag}_work", queue="workers", cb=respond)
    await connection.publish(f"{tag}.a", b"hello")
    await connection.publish(
        f"{tag}.b", b"hi", headers={"X-Trace": "t-1", "Authorization": f"Bearer {SECRET_HEADER_VALUE}"}
    )
    await connection.publish(f"{tag}_work", b"job")
    await connection.request(f"{tag}.req", b"ping", timeout=5)
    try:
        await connection.request(f"{tag}_nobody", b"?", timeout=5)
    except nats.errors.NoRespondersError:
        print("no responders", flush=True)
    stream = f"{tag}_S"
    jetstream = connection.jetstream()
    await jetstream.add_stream(StreamConfig(name=stream, subjects=[f"{tag}_js.>"]))
    try:
        await jetstream.publish(f"{tag}_js.one", b"1")
        await jetstream.publish(f"{tag}_js.two", b"22")
        pull = await jetstream.pull_subscribe(f"{tag}_js.>", durable=f"{tag}_c", stream=stream)
        first, second = await pull.fetch(2, timeout=5)
        await first.ack()
        await second.nak()
        (again,) = await pull.fetch(1, timeout=5)
        await again.term()
        try:
            await pull.fetch(1, timeout=0.5)
        except nats.errors.TimeoutError:
            print("fetch timed out", flush=True)
        try:
            await jetstream.stream_info(f"{tag}_NOPE")
        except nats.js.errors.NotFoundError:
            print("no such stream", flush=True)
    finally:
        await jetstream.delete_stream(stream)
        await connection.flush()
        await connection.close()


# -- running --------------------------------------------------------------------------------------------------
def prepare(name: str) -> None:
    """Everything a client imports, done before the tracer comes."""
    if name == "amqp":
        import pika  # noqa: F401
        import pika.adapters.blocking_connection  # noqa: F401
    elif name.startswith("mqtt"):
        import paho.mqtt.client  # noqa: F401
        import paho.mqtt.packettypes  # noqa: F401
        import paho.mqtt.properties  # noqa: F401
    elif name == "nats":
        import nats  # noqa: F401
        import nats.js.api  # noqa: F401
        import nats.js.errors  # noqa: F401

        asyncio.run(asyncio.sleep(0))  # the event loop's own first-use imports


def traced() -> bool:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("TracerPid:"):
                return int(line.split()[1]) != 0
    return False


def wait_for_tracer(timeout: float = 60) -> None:
    Path("ready").write_text(str(os.getpid()))
    deadline = time.monotonic() + timeout
    while not traced():
        if time.monotonic() > deadline:
            raise SystemExit(f"no tracer attached within {timeout} s")
        time.sleep(0.01)


def main(args: list[str]) -> int:
    attach = "--attach" in args
    args = [arg for arg in args if arg != "--attach"]
    name, port, tag, user = args[0], int(args[1]), args[2], args[3]
    prepare(name)
    if attach:
        wait_for_tracer()
    if name == "amqp":
        run_amqp(port, tag, user)
    elif name in ("mqtt4", "mqtt5"):
        run_mqtt(port, tag, user, int(name[-1]))
    elif name == "nats":
        run_nats(port, tag, user)
    else:
        raise SystemExit(f"unknown client {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
