"""What the broker tests share: the machine's servers (RabbitMQ, Mosquitto, NATS with JetStream), a
RabbitMQ user of their own, and the scenarios of captures/broker_clients.py recorded through a relay.

Tests that need a server skip with the reason when it is absent; on the project's machine all three
run. The RabbitMQ user is made with `rabbitmqctl` for the session and deleted afterwards, so that its
password is unique and the tests can look for it in every output (guest's password is its name).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.broker_facts import clients
from tests.conftest import listening
from tests.relay import Recording, Relay

AMQP_PORT, MQTT_PORT, NATS_PORT = 5672, 1883, 4222
PORTS = {"amqp": AMQP_PORT, "mqtt4": MQTT_PORT, "mqtt5": MQTT_PORT, "nats": NATS_PORT}
SERVERS = {AMQP_PORT: "RabbitMQ", MQTT_PORT: "Mosquitto", NATS_PORT: "NATS"}
# MQTT and NATS here take any user and password: the password is the tests' own, so that they can look
# for it in every output.
MQTT_NATS_USER = "dockit_tester"


def need_server(port: int) -> None:
    if not listening(port):
        pytest.skip(f"{SERVERS[port]} is not listening on 127.0.0.1:{port}")


@dataclass(frozen=True)
class Login:
    user: str
    password: str


@contextlib.contextmanager
def rabbitmq_login() -> Iterator[Login]:
    """A RabbitMQ user with a fresh password and every right on `/`, deleted afterwards."""
    need_server(AMQP_PORT)
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is needed to make a RabbitMQ user of the tests' own")
    login = Login(f"dockit_t_{os.getpid()}", "Rb-" + secrets.token_hex(8))

    def ctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)

    ctl("add_user", login.user, login.password)
    try:
        ctl("set_permissions", "-p", "/", login.user, ".*", ".*", ".*")
        yield login
    finally:
        ctl("delete_user", login.user)


def new_password() -> str:
    """A password of the tests' own for MQTT and NATS (which take any here)."""
    return "Bp-" + secrets.token_hex(8)


def login_for(name: str, rabbitmq: Login | None, password: str) -> Login:
    return rabbitmq if name == "amqp" and rabbitmq is not None else Login(MQTT_NATS_USER, password)


@contextlib.contextmanager
def password_in_environment(password: str) -> Iterator[None]:
    old = os.environ.get("DOCKIT_CAPTURE_PASSWORD")
    os.environ["DOCKIT_CAPTURE_PASSWORD"] = password
    try:
        yield
    finally:
        if old is None:
            del os.environ["DOCKIT_CAPTURE_PASSWORD"]
        else:
            os.environ["DOCKIT_CAPTURE_PASSWORD"] = old


def record_scenario(name: str, tag: str, login: Login) -> Recording:
    """Run one scenario in this process through a relay to the real server; what crossed it."""
    port = PORTS[name]
    need_server(port)
    relay = Relay(("127.0.0.1", port))
    try:
        with password_in_environment(login.password):
            if name == "amqp":
                clients.run_amqp(relay.port, tag, login.user)
            elif name == "nats":
                clients.run_nats(relay.port, tag, login.user)
            else:
                clients.run_mqtt(relay.port, tag, login.user, int(name[-1]))
        return relay.last()
    finally:
        relay.close()


def rabbitmq_version() -> str:
    """The broker's version as pika's own parse of connection.start reads it (not dockit's)."""
    import pika

    connection = pika.BlockingConnection(
        pika.ConnectionParameters("127.0.0.1", AMQP_PORT, credentials=pika.PlainCredentials("guest", "guest"))
    )
    try:
        return str(connection._impl.server_properties["version"])  # the client library's own parse
    finally:
        connection.close()
