"""What the PostgreSQL tests share: the machine's server (127.0.0.1:5432 and its unix socket, trust
auth), scratch databases with unique names that are dropped afterwards, and the decoder fed chunks."""

from __future__ import annotations

import secrets
import shutil
import socket
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from decoders.api import ChannelInfo, Chunk
from decoders.postgres import PostgresDecoder
from decoders.records import BrokerMessage, CimObject, DatabaseSession, Output, SqlQuery, as_cim
from tests.conftest import listening

HOST = "127.0.0.1"
PORT = 5432
SOCKET_DIR = "/var/run/postgresql"
ADMIN = "postgres"


def server_listening() -> bool:
    return listening(PORT, HOST)


requires_server = pytest.mark.skipif(not server_listening(), reason="no PostgreSQL server on 127.0.0.1:5432")


def unique(prefix: str = "dockit_pg") -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def admin_connection(database: str = "postgres"):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(
        host=HOST, port=PORT, user=ADMIN, dbname=database, autocommit=True, sslmode="disable"
    )


@contextmanager
def scratch_database(prefix: str = "dockit_pg") -> Iterator[str]:
    """A database of its own for one test module, dropped afterwards (with anything still connected)."""
    name = unique(prefix)
    with admin_connection() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        with admin_connection() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def needs(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} installed")


def decode(chunks: Iterable[Chunk], channel: ChannelInfo, rows: int = 0) -> list[Output]:
    decoder = PostgresDecoder(channel, max_rows=rows)
    out: list[Output] = []
    last = None
    for chunk in chunks:
        out += decoder.feed(chunk)
        last = chunk.time
    out += decoder.close(last)
    return out


def queries(out: Sequence[Output]) -> list[SqlQuery]:
    return [o for o in out if isinstance(o, SqlQuery)]


def sessions(out: Sequence[Output]) -> list[DatabaseSession]:
    return [o for o in out if isinstance(o, DatabaseSession)]


def messages(out: Sequence[Output]) -> list[CimObject]:
    """The `Dockit_Message`s (LISTEN/NOTIFY notifications), as the summary writes them."""
    found = [as_cim(o) for o in out if isinstance(o, BrokerMessage | CimObject)]
    return [o for o in found if o.cim_class == "Dockit_Message"]


def fact(query: SqlQuery) -> tuple:
    """What a test states of a query: text, status, SQLSTATE, rows, affected rows, parameters."""
    return (
        query.text,
        query.status,
        query.error_code,
        query.rows,
        query.affected_rows,
        tuple(query.parameters),
    )


def summary(out: Sequence[Output], times: bool = True) -> list[tuple]:
    """Everything that must not depend on how the bytes were split, nor on which end was traced
    (`times=False`: the start and duration left out, for calls merged into one at the later time)."""
    rows: list[tuple] = []
    for o in out:
        if isinstance(o, SqlQuery):
            rows.append(
                fact(o)
                + (
                    o.error_message,
                    tuple(o.columns),
                    tuple(map(tuple, o.sample_rows)),
                    o.truncated,
                    o.start if times else None,
                    o.duration if times else None,
                    tuple(sorted(o.extra.items())),
                    tuple(o.notices),
                    tuple(o.tables),
                )
            )
        elif isinstance(o, DatabaseSession):
            rows.append(("session", o.user, o.database, o.server_version, tuple(sorted(o.extra.items()))))
        elif isinstance(o, BrokerMessage | CimObject):
            cim = as_cim(o)
            attrs = tuple((k, v) for k, v in cim.attrs if k != "Process" and (times or k != "Time"))
            rows.append((cim.cim_class, attrs))
    return rows


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def sql_elements(xml_path: str | Path) -> list:
    from lxml import etree

    return list(etree.parse(str(xml_path)).getroot().iter("Dockit_SqlQuery"))
