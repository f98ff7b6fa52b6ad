"""TnsDecoder on real Oracle captures (cx_Oracle and sqlplus over BEQ pipes) and on built packets.

Ground truth comes from outside the decoder: the query the ini names, the rows the python program
printed to stderr, the statements sqlplus read from the terminal (its `read(0</dev/pts/2>...)` lines),
and the error text visible in the capture's own reply bytes.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decoders.api import ChannelInfo, Chunk, Direction
from decoders.records import Annotation, DatabaseSession, SqlQuery, as_cim
from decoders.tns import TnsDecoder
from protocols import tns
from tests.tns_capture import ORACLE_LTRACE, ORACLE_STRACE, SQLPLUS_STRACE, pipe_channel, pipe_chunks

REPO = Path(__file__).resolve().parents[1]


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is absent (survol captures not installed)")


def run(chunks, channel=None):
    decoder = TnsDecoder(channel or pipe_channel(), max_rows=10)
    out = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    out += decoder.close(None)
    return out


def queries(out):
    return [o for o in out if isinstance(o, SqlQuery)]


def sessions(out):
    return [o for o in out if isinstance(o, DatabaseSession)]


def split(chunk: Chunk, cuts: list[int]) -> list[Chunk]:
    """One chunk as several, the lost bytes (if any) after the last piece."""
    points = [0, *sorted(set(c for c in cuts if 0 < c < len(chunk.data))), len(chunk.data)]
    pieces = [chunk.data[a:b] for a, b in zip(points, points[1:], strict=False)]
    out = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        size = len(piece) + (chunk.missing if last else 0)
        out.append(
            Chunk(
                data=piece,
                direction=chunk.direction,
                time=chunk.time,
                pid=chunk.pid,
                size=size,
                call_index=chunk.call_index,
            )
        )
    return out


def bytewise(chunks):
    return [piece for chunk in chunks for piece in split(chunk, list(range(1, len(chunk.data))))]


def randomly(chunks, seed):
    rng = random.Random(seed)
    return [
        piece
        for chunk in chunks
        for piece in split(
            chunk, [rng.randrange(1, max(2, len(chunk.data))) for _ in range(rng.randrange(0, 4))]
        )
    ]


def summary(out):
    return [
        (q.text, q.status, q.error_code, q.rows, q.affected_rows, q.truncated, tuple(q.tables))
        for q in queries(out)
    ]


# --------------------------------------------------------------------------------------------------
# cx_Oracle: select username, user_id from all_users


def _printed_rows() -> list[tuple[str, str]]:
    return re.findall(r"\"row=\('([^']+)', (\d+)\)\\n\"", ORACLE_STRACE.read_text(errors="replace"))


def test_cx_oracle_query_once_with_its_session():
    _need(ORACLE_STRACE)
    out = run(pipe_chunks(ORACLE_STRACE))
    (query,) = queries(out)
    ini = ORACLE_STRACE.with_name("dockit_oracle_db_schemas.strace.ini").read_text()
    expected = re.search(r'query "([^"]+)"', ini).group(1)
    assert expected == "select username, user_id from all_users"
    # strace -s 250 cut the 312-byte write 10 bytes before the end of the SQL: the decoder says so
    assert (
        query.truncated and expected.startswith(query.text) and query.text == "select username, user_id from"
    )
    assert query.status == "ok" and query.error_code is None
    printed = _printed_rows()
    assert query.rows == len(printed) == 13  # the fetch's end-of-call message counts all rows
    assert query.columns == ["USERNAME", "USER_ID"]
    # the first two rows came in the execute reply strace cut; the fetch reply shows the rest
    assert (
        query.sample_rows and [tuple(r) for r in query.sample_rows] == printed[2 : 2 + len(query.sample_rows)]
    )
    assert query.tables == []  # "all_users" was in the lost bytes: a cut name is never guessed
    (session,) = sessions(out)
    assert session.user == "scott" and session.protocol == "oracle" and session.session_id == "pipe-1"
    assert session.server == "beq:/u01/app/oracle/product/11.2.0/xe/bin/oracle"
    assert session.server_version == "11.2.0.2.0"
    assert session.extra["Program"] == "python@fedora22" and session.extra["OsUser"] == "rchateau"
    notes = [o for o in out if isinstance(o, Annotation)]
    assert [n.text for n in notes] == ["oracle sql: select username, user_id from"]
    write = next(c for c in pipe_chunks(ORACLE_STRACE) if b"select username" in c.data)
    assert notes[0].call_index == write.call_index


def test_cx_oracle_secrets_never_leave_the_decoder():
    _need(ORACLE_STRACE)
    chunks = pipe_chunks(ORACLE_STRACE)
    secrets = []
    for chunk in chunks:
        for key in (b"AUTH_SESSKEY", b"AUTH_PASSWORD"):
            at = chunk.data.find(key)
            if at >= 0:
                value = chunk.data[at + len(key) + 5 : at + len(key) + 5 + 32]
                if value:
                    secrets.append(value.decode("latin-1"))
    assert len(secrets) >= 2
    text = repr([as_cim(o) for o in run(chunks) if not isinstance(o, Annotation)])
    for secret in secrets:
        assert secret not in text
    assert "AUTH_SESSKEY" not in text and "AUTH_PASSWORD" not in text


@pytest.mark.parametrize("mode", ["bytewise", "random1", "random2", "random3"])
def test_cx_oracle_any_split_gives_the_same_records(mode):
    _need(ORACLE_STRACE)
    chunks = pipe_chunks(ORACLE_STRACE)
    whole = summary(run(chunks))
    pieces = bytewise(chunks) if mode == "bytewise" else randomly(chunks, int(mode[-1]))
    out = run(pieces)
    assert summary(out) == whole
    assert sessions(out)[0].user == "scott"


def test_ltrace_capture_carries_no_tns_bytes():
    """Under ltrace the BEQ server died (ORA-12547 lost contact): the pipe read returned 0 bytes."""
    _need(ORACLE_LTRACE)
    text = ORACLE_LTRACE.read_text(errors="replace")
    assert 'read@SYS(7, "", 64)' in text and "ORA-12547: TNS:lost contact" in text
    assert "(DESCRIPTION=" not in "".join(line for line in text.splitlines() if "write@SYS(6," in line)


# --------------------------------------------------------------------------------------------------
# sqlplus, attached mid-session


def _terminal_statements() -> list[str]:
    """What the user typed, cut at the `;` that ends each statement (sqlplus's rule)."""
    typed = re.findall(
        r'read\(0</dev/pts/\d+>, "((?:[^"\\]|\\.)*)"', SQLPLUS_STRACE.read_text(errors="replace")
    )
    statements, current = [], ""
    for piece in typed:
        current += piece.encode().decode("unicode_escape")
        if current.rstrip().endswith(";"):
            statements.append(" ".join(current.rstrip().rstrip(";").split()))
            current = ""
    return statements


def test_sqlplus_every_typed_statement_once_in_order():
    _need(SQLPLUS_STRACE)
    out = run(pipe_chunks(SQLPLUS_STRACE))
    typed = _terminal_statements()
    assert len(typed) == 13 and typed[0] == "select * from all_tables" and typed[-1] == "commit"
    decoded = [" ".join(q.text.split()) for q in queries(out)]
    assert decoded == typed
    assert all(q.confidence is None and not q.truncated for q in queries(out))


def test_sqlplus_statuses_come_from_the_replies():
    _need(SQLPLUS_STRACE)
    raw = SQLPLUS_STRACE.read_text(errors="replace")
    assert "ORA-00907: missing right parenthesis" in raw and "ORA-01031: insufficient privileges" in raw
    by_text = {}
    for q in queries(run(pipe_chunks(SQLPLUS_STRACE))):
        by_text.setdefault(" ".join(q.text.split()), []).append(q)
    (bad,) = by_text["insert into books select(book_id+10,book_name,author_name,book_isbn) from books"]
    assert (bad.status, bad.error_code, bad.error_message) == (
        "error",
        "ORA-00907",
        "missing right parenthesis",
    )
    creates = by_text[_terminal_statements()[3]]
    assert [c.error_code for c in creates] == ["ORA-01031", "ORA-01031", None]
    assert creates[2].status == "ok"
    (good,) = by_text["insert into books select book_id+10,book_name,author_name,book_isbn from books"]
    assert good.status == "ok" and good.affected_rows == 2  # the two rows inserted before it
    assert by_text["insert into books values(1,'name1','author1','isbn1')"][0].affected_rows == 1
    assert good.tables == ["books"] and good.written_tables == ["books"]
    (count,) = by_text["select count(1) from all_tab_columns"]
    assert count.rows == 1 and count.columns == ["COUNT(1)"] and len(count.sample_rows) == 1
    # 411: the row count the server's final no-data-found message gave after the last fetch
    (columns,) = by_text[
        "select data_type,column_name,data_length from all_tab_columns where TABLE_NAME like 'V%'"
    ]
    assert (
        columns.status == "ok"
        and columns.rows == 411
        and columns.columns == ["DATA_TYPE", "COLUMN_NAME", "DATA_LENGTH"]
    )


def test_sqlplus_any_split_gives_the_same_records():
    _need(SQLPLUS_STRACE)
    chunks = pipe_chunks(SQLPLUS_STRACE)
    whole = summary(run(chunks))
    assert summary(run(randomly(chunks, 7))) == whole
    assert summary(run(bytewise(chunks[-80:]))) == summary(run(chunks[-80:]))


def test_sqlplus_throughput():
    _need(SQLPLUS_STRACE)
    chunks = pipe_chunks(SQLPLUS_STRACE)
    total = sum(len(c.data) for c in chunks)
    begin = time.perf_counter()
    run(chunks * 20)
    elapsed = time.perf_counter() - begin
    print(f"\nTNS decoder: {20 * total / elapsed / 1e6:.1f} MB/s over {20 * len(chunks)} chunks")
    assert elapsed < 20


# --------------------------------------------------------------------------------------------------
# built packets: TCP, 4-byte lengths, refusals, cursor re-use, the heuristic fallback


def chunk(data: bytes, direction: Direction, index: int) -> Chunk:
    return Chunk(data=data, direction=direction, time=float(index), pid=77, size=len(data), call_index=index)


def conversation(large: bool, sql: str = "select name from emp where id = 1") -> list[Chunk]:
    descriptor = "(DESCRIPTION=(ADDRESS=(PROTOCOL=tcp)(HOST=db.example)(PORT=1521))(CONNECT_DATA=(SERVICE_NAME=orclpdb)(CID=(PROGRAM=app)(HOST=box)(USER=alice))))"
    auth = tns.build_auth_native(
        tns.Function.AUTH_PHASE_ONE, 1, "hr", {"AUTH_PID": "9", "AUTH_SESSKEY": "SECRETKEY"}
    )
    auth_reply = b"\x08" + tns.native_pair("AUTH_VERSION_NO", "318767104") + tns.build_call_status_native()
    execute = tns.build_execute_native(sql, 2)
    reply = tns.build_call_status_native(code=1403, rows=1, cursor=5, message="ORA-01403: no data found\n")
    again = tns.build_execute_native(None, 3, cursor=5)
    again_reply = tns.build_call_status_native(
        code=1403, rows=1, cursor=5, message="ORA-01403: no data found\n"
    )
    failing = tns.build_execute_native("select * from missing_table", 4)
    failing_reply = tns.build_call_status_native(
        code=942, cursor=6, message="ORA-00942: table or view does not exist\n"
    )
    seq = [
        (tns.build_connect(descriptor), Direction.OUT),
        (tns.build_accept(version=315 if large else 314), Direction.IN),
        (tns.build_data(auth, large=large), Direction.OUT),
        (tns.build_data(auth_reply, large=large), Direction.IN),
        (tns.build_data(execute, large=large), Direction.OUT),
        (tns.build_data(reply, large=large), Direction.IN),
        (tns.build_data(again, large=large), Direction.OUT),
        (tns.build_data(again_reply, large=large), Direction.IN),
        (tns.build_data(failing, large=large), Direction.OUT),
        (tns.build_marker(large=large) * 2, Direction.IN),
        (tns.build_marker(tns.MarkerType.RESET, large=large), Direction.OUT),
        (tns.build_data(failing_reply, large=large), Direction.IN),
        (tns.build_data(b"", tns.DATA_FLAG_EOF, large=large), Direction.OUT),
    ]
    return [chunk(data, direction, index) for index, (data, direction) in enumerate(seq)]


@pytest.mark.parametrize("large", [False, True])
def test_built_tcp_conversation(large):
    channel = ChannelInfo(
        channel_id="tcp-1",
        kind="tcp",
        local="10.0.0.1:40000",
        remote="10.0.0.2:1521",
        remote_port=1521,
        pid=77,
    )
    out = run(conversation(large), channel)
    first, second, third = queries(out)
    assert (
        first.text == second.text == "select name from emp where id = 1"
    )  # the re-execution names cursor 5 only
    assert first.status == second.status == "ok" and first.tables == ["emp"]
    assert (third.status, third.error_code, third.error_message) == (
        "error",
        "ORA-00942",
        "table or view does not exist",
    )
    (session,) = sessions(out)
    assert (
        session.server == "10.0.0.2:1521" and session.user == "hr" and session.server_version == "19.0.0.0.0"
    )
    assert session.extra["ServiceName"] == "orclpdb" and session.extra["OsUser"] == "alice"
    assert "SECRETKEY" not in repr([as_cim(o) for o in out if not isinstance(o, Annotation)])


def test_descriptor_host_port_when_the_channel_does_not_say():
    out = run(conversation(False), ChannelInfo(channel_id="pipe-2", kind="pipe"))
    assert sessions(out)[0].server == "db.example:1521"


def test_refused_connection_is_a_session_with_the_reason():
    seq = [
        chunk(
            tns.build_connect(
                "(DESCRIPTION=(ADDRESS=(PROTOCOL=tcp)(HOST=h)(PORT=1521))(CONNECT_DATA=(SERVICE_NAME=nope)))"
            ),
            Direction.OUT,
            0,
        ),
        chunk(
            tns.build_refuse(
                "(DESCRIPTION=(TMP=)(VSNNUM=0)(ERR=12514)(ERROR_STACK=(ERROR=(CODE=12514)(EMFI=4))))"
            ),
            Direction.IN,
            1,
        ),
    ]
    out = run(seq)
    (session,) = sessions(out)
    assert session.extra["Refused"] == 12514 and session.extra["ServiceName"] == "nope"
    assert not queries(out)


def test_lost_bytes_inside_a_packet_are_skipped_exactly():
    chunks = conversation(False)
    execute = chunks[4]
    cut = tns.HEADER_SIZE + 2 + tns.NATIVE_EXECUTE_PREAMBLE + 1 + 11  # keeps "select name"
    chunks[4] = Chunk(
        data=execute.data[:cut],
        direction=execute.direction,
        time=execute.time,
        pid=77,
        size=len(execute.data),
        call_index=4,
    )
    first = queries(run(chunks))[0]
    assert first.text == "select name" and first.truncated and first.status == "ok"


def test_unknown_layout_falls_back_to_heuristic_once():
    odd = b"\x03\x5e\x02" + b"\x99" * 20 + bytes([26]) + b"update emp set sal = sal+1" + b"\x00" * 8
    seq = [
        chunk(tns.build_data(odd), Direction.OUT, 0),
        chunk(tns.build_data(tns.build_call_status_native(rows=4, cursor=3)), Direction.IN, 1),
    ]
    (query,) = queries(run(seq))
    assert query.text == "update emp set sal = sal+1" and query.confidence == "heuristic"


def test_score():
    channel = pipe_channel()
    assert TnsDecoder.score(b"NTP0 29839\n", Direction.IN, channel) >= 90
    connect = tns.build_connect("(DESCRIPTION=(ADDRESS=(PROTOCOL=tcp)(HOST=h)(PORT=1521)))")
    assert TnsDecoder.score(connect, Direction.OUT, channel) == 100
    assert (
        TnsDecoder.score(
            tns.build_data(tns.build_execute_native("select 1 from dual", 1)), Direction.OUT, channel
        )
        >= 80
    )
    for other in (
        b"GET / HTTP/1.1\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"J\x00\x00\x00\n5.5.5-10.11",
    ):
        assert TnsDecoder.score(other, Direction.IN, channel) < 1


# --------------------------------------------------------------------------------------------------
# robustness


@given(st.lists(st.tuples(st.binary(max_size=300), st.booleans(), st.integers(0, 50)), max_size=30))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_random_input_never_raises(items):
    decoder = TnsDecoder(pipe_channel())
    for index, (data, out, lost) in enumerate(items):
        decoder.feed(
            Chunk(
                data=data,
                direction=Direction.OUT if out else Direction.IN,
                time=None,
                pid=1,
                size=len(data) + lost,
                call_index=index,
            )
        )
    decoder.close(None)


_REAL: list[Chunk] = []


def _real_chunks() -> list[Chunk]:
    if not _REAL and SQLPLUS_STRACE.exists():
        _REAL.extend(pipe_chunks(ORACLE_STRACE) + pipe_chunks(SQLPLUS_STRACE)[-60:])
    return _REAL


@given(st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_real_input_never_raises(data):
    chunks = _real_chunks()
    if not chunks:
        pytest.skip("survol captures not installed")
    decoder = TnsDecoder(pipe_channel())
    for original in chunks:
        raw = bytearray(original.data)
        for _ in range(data.draw(st.integers(0, 3))):
            if raw:
                raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        if raw and data.draw(st.booleans()):
            del raw[data.draw(st.integers(0, len(raw) - 1)) :]
        decoder.feed(
            Chunk(
                data=bytes(raw),
                direction=original.direction,
                time=original.time,
                pid=1,
                size=max(original.size, len(raw)),
                call_index=original.call_index,
            )
        )
    decoder.close(None)


# --------------------------------------------------------------------------------------------------
# end to end: the CLI replays the captures


def _replay(capture: Path, tmp_path: Path) -> str:
    prefix = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "dockit_core.cli", "-i", str(capture), "-l", str(prefix)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return (tmp_path / "out.xml").read_text()


def test_cli_replays_cx_oracle_capture(tmp_path):
    _need(ORACLE_STRACE)
    from lxml import etree

    root = etree.fromstring(_replay(ORACLE_STRACE, tmp_path).encode())
    (query,) = root.findall("Dockit_SqlQuery[@Protocol='oracle']")
    assert query.findtext("Text") == "select username, user_id from" and query.get("Truncated") == "true"
    assert query.get("Status") == "ok" and query.get("Rows") == "13"
    (session,) = root.findall("Dockit_DatabaseSession[@Protocol='oracle']")
    assert session.get("User") == "scott"


def test_cli_replays_sqlplus_capture(tmp_path):
    _need(SQLPLUS_STRACE)
    from lxml import etree

    root = etree.fromstring(_replay(SQLPLUS_STRACE, tmp_path).encode())
    found = root.findall("Dockit_SqlQuery[@Protocol='oracle']")
    assert [" ".join(q.findtext("Text").split()) for q in found] == _terminal_statements()
    calls = (tmp_path / "out.txt").read_text()
    assert [
        line.split("# oracle sql: ", 1)[1] for line in calls.splitlines() if "# oracle sql: " in line
    ] == _terminal_statements()
    assert [q.get("ErrorCode") for q in found if q.get("Status") == "error"] == [
        "ORA-01031",
        "ORA-01031",
        "ORA-00907",
    ]


def test_cli_replays_ltrace_capture_without_oracle_records(tmp_path):
    _need(ORACLE_LTRACE)
    xml = _replay(ORACLE_LTRACE, tmp_path)
    assert "Dockit_SqlQuery" not in xml  # the connection failed before any TNS byte moved


def test_universal_layout_conversation():
    seq = [
        chunk(tns.build_data(tns.build_execute_universal("select a from t", 2)), Direction.OUT, 0),
        chunk(
            tns.build_data(
                b"\x10"
                + bytes(30)
                + tns.build_call_status_universal(
                    code=1403, rows=7, cursor=4, message="ORA-01403: no data found\n"
                )
            ),
            Direction.IN,
            1,
        ),
        chunk(tns.build_data(tns.build_execute_universal("delete from t where a = 1", 3)), Direction.OUT, 2),
        chunk(
            tns.build_data(
                tns.build_call_status_universal(
                    code=2292,
                    cursor=5,
                    message="ORA-02292: integrity constraint violated - child record found\n",
                )
            ),
            Direction.IN,
            3,
        ),
    ]
    first, second = queries(run(seq))
    assert (first.text, first.status, first.rows) == ("select a from t", "ok", 7)
    assert (second.status, second.error_code, second.tables) == ("error", "ORA-02292", ["t"])


def test_server_side_view_gives_the_same_statements():
    """If the dedicated server were the traced process, OUT and IN swap: roles come from content."""
    _need(ORACLE_STRACE)
    chunks = pipe_chunks(ORACLE_STRACE)
    flipped = [
        Chunk(
            data=c.data,
            direction=c.direction.reverse(),
            time=c.time,
            pid=c.pid,
            size=c.size,
            call_index=c.call_index,
        )
        for c in chunks
    ]
    assert summary(run(flipped)) == summary(run(chunks))
    _need(SQLPLUS_STRACE)
    chunks = pipe_chunks(SQLPLUS_STRACE)
    flipped = [
        Chunk(
            data=c.data,
            direction=c.direction.reverse(),
            time=c.time,
            pid=c.pid,
            size=c.size,
            call_index=c.call_index,
        )
        for c in chunks
    ]
    assert summary(run(flipped, ChannelInfo(channel_id="p", kind="pipe", listening=True))) == summary(
        run(chunks)
    )


def test_a_reply_larger_than_what_is_kept_still_gives_its_status():
    rows = b"".join(b"\x07" + tns.encode_bytes_with_length(b"row%07d" % i) for i in range(200_000))
    reply = tns.build_data(rows[:8000]) + b"".join(
        tns.build_data(rows[i : i + 8000]) for i in range(8000, len(rows), 8000)
    )
    reply += tns.build_data(
        tns.build_call_status_native(code=1403, rows=200_000, cursor=2, message="ORA-01403: no data found\n")
    )
    seq = [
        chunk(tns.build_data(tns.build_execute_native("select name from big", 2)), Direction.OUT, 0),
        chunk(reply, Direction.IN, 1),
    ]
    (query,) = queries(run(seq))
    assert query.status == "ok" and query.rows == 200_000


def test_execute_cut_before_its_text_is_still_one_execution():
    execute = tns.build_data(tns.build_execute_native("select name from emp", 2))
    cut = Chunk(data=execute[:32], direction=Direction.OUT, time=0.0, pid=1, size=len(execute), call_index=5)
    reply = chunk(
        tns.build_data(
            tns.build_call_status_native(code=1403, rows=3, cursor=2, message="ORA-01403: no data found\n")
        ),
        Direction.IN,
        6,
    )
    out = run([cut, reply])
    (query,) = queries(out)
    assert query.text == "" and query.truncated and query.status == "ok"
    assert [o.text for o in out if isinstance(o, Annotation)] == [
        "oracle sql: (text lost: cut by the tracer)"
    ]


def test_score_leaves_mysql_alone():
    channel = pipe_channel()
    for mysql in (
        b"\x21\x00\x00\x00\x03select 1 from dual limit 1;;;;",
        b"\x01\x00\x00\x00\x01",
        b"\x05\x00\x00\x00\x02test",
    ):
        assert TnsDecoder.score(mysql, Direction.OUT, channel) < 1


def test_sql_longer_than_a_packet_is_read_whole_and_annotated_at_its_first_call():
    sql = "select " + ", ".join(f"column_{i}" for i in range(1500)) + " from wide_table"
    message = tns.build_execute_native(sql, 2)
    pieces = [message[i : i + 8182] for i in range(0, len(message), 8182)]
    seq = [chunk(tns.build_data(piece), Direction.OUT, index) for index, piece in enumerate(pieces)]
    seq.append(
        chunk(
            tns.build_data(
                tns.build_call_status_native(
                    code=1403, rows=0, cursor=2, message="ORA-01403: no data found\n"
                )
            ),
            Direction.IN,
            99,
        )
    )
    out = run(seq)
    (query,) = queries(out)
    assert query.text == sql and not query.truncated and query.tables == ["wide_table"]
    (note,) = [o for o in out if isinstance(o, Annotation)]
    assert note.call_index == 0 and note.text.startswith("oracle sql: select column_0, column_1")
