"""Tag1Decoder with bytes alone: real recorded sessions, every split, both ends, cut buffers, garbage.

The fixtures are the real client against the real server, traced by dockit and cut out with
`dockit extract` (record_fixtures.py). Expected values are what the client sent and what the server
must answer (see dockit_tag1/__init__.py), never what the decoder said.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dockit_tag1.decoder import MAX_FIELD, MAX_PENDING, Tag1Decoder
from hypothesis import given, settings
from hypothesis import strategies as st

from decoders.records import Secret
from decoders.testing import (
    IN,
    OUT,
    assert_never_raises,
    assert_same_records,
    channel,
    chunk,
    conversation,
    cut,
    decode,
    garbage,
    load_chunks,
    merged,
    replay,
    reversed_directions,
)

FIXTURES = Path(__file__).parent / "fixtures"
PASSWORD = "Pw-7fQ2-tag1-Zx9K"  # the password record_fixtures.py logged on with
ORDER = ("ClOrdId", "Symbol", "Side", "Quantity", "Price", "Status", "OrderId", "Text")
CANCEL = ("ClOrdId", "OrigClOrdId", "Status", "Text")


def msg(*fields: tuple[int, str]) -> bytes:
    """A TAG1 message, its checksum computed here from the protocol's definition."""
    body = b"".join(f"{tag}={value}".encode() + b"\x01" for tag, value in fields)
    return body + b"10=%03d\x01" % (sum(body) % 256)


LOGON = msg((35, "A"), (553, "bob"), (554, "hunter2-secret"))
WELCOME = msg((35, "A"), (58, "welcome"))
ORDER_1 = msg((35, "D"), (11, "o1"), (55, "ACME"), (54, "1"), (38, "100"), (44, "10.25"))
REPORT_1 = msg((35, "8"), (37, "O1"), (11, "o1"), (39, "0"), (58, "accepted"))
ORDER_2 = msg((35, "D"), (11, "o2"), (55, "XYZ"), (54, "2"), (38, "5"), (44, "3"))
REPORT_2 = msg((35, "8"), (37, "O2"), (11, "o2"), (39, "8"), (58, "no liquidity"))
CANCEL_1 = msg((35, "F"), (11, "k1"), (41, "o1"))
CANCELLED_1 = msg((35, "8"), (37, "O1"), (11, "k1"), (41, "o1"), (39, "4"), (58, "cancelled"))
LOGOUT = msg((35, "5"))
BYE = msg((35, "5"), (58, "bye"))

SESSION = [(OUT, LOGON), (IN, WELCOME), (OUT, ORDER_1), (IN, REPORT_1), (OUT, ORDER_2), (IN, REPORT_2),
           (OUT, CANCEL_1), (IN, CANCELLED_1), (OUT, LOGOUT), (IN, BYE)]  # fmt: skip
SESSION_ORDERS = [
    ("o1", "ACME", "buy", 100, "10.25", "new", "O1", "accepted"),
    ("o2", "XYZ", "sell", 5, "3", "rejected", "O2", "no liquidity"),
]


def session(step: float = 0.25):
    return conversation(SESSION, step=step)


# -- the checksum, pinned ------------------------------------------------------------------------------


def test_checksum_is_the_byte_sum_before_the_checksum_field():
    # "35=5<SOH>": 51 + 53 + 61 + 53 + 1 = 219, the logout the real client sent (fixtures/session.chunks)
    assert LOGOUT == b"35=5\x0110=219\x01"
    assert load_chunks(FIXTURES / "session.chunks").chunks[-2].data == LOGOUT


# -- real recorded sessions ----------------------------------------------------------------------------


def test_real_session_one_message_a_call():
    """record_fixtures.py 'session': split logon, c2's checksum spoiled, c4 rejected by the server."""
    decoded = replay(FIXTURES / "session.chunks", Tag1Decoder)
    orders = {row[0]: row for row in decoded.table(*ORDER, cim_class="Tag1_Order")}
    assert orders == {
        "c1": ("c1", "ACME", "buy", 100, "10.25", "new", "O1", "accepted"),
        # the server ignores a message whose checksum is wrong: c2 is never answered
        "c2": ("c2", "XYZ", "sell", 5, "3", "unknown", None, None),
        # the server numbers the orders it receives: c2 never arrived
        "c3": ("c3", "QQQ", "buy", 7, "1.5", "new", "O2", "accepted"),
        "c4": ("c4", "BAD", "buy", 0, "1", "rejected", "O3", "quantity must be a positive integer"),
    }
    assert decoded.table(*CANCEL, cim_class="Tag1_Cancel") == [
        ("x1", "c1", "cancelled", "cancelled"),
        ("x2", "c2", "rejected", "unknown order"),  # c2 never reached the server's book
    ]
    assert decoded.table("User", "Password", "Status", cim_class="Tag1_Logon") == [
        ("alice", "<redacted>", "accepted")
    ]
    (problem,) = decoded.problems
    assert problem.severity == "error" and "bad checksum on a D message" in problem.message
    bad_order = next(c for c in load_chunks(FIXTURES / "session.chunks").chunks if b"11=c2\x01" in c.data)
    assert problem.call_index == bad_order.call_index
    # the logon crossed in two calls, and both are named as holding a credential
    logon_calls = [c.call_index for c in load_chunks(FIXTURES / "session.chunks").chunks[:2]]
    assert decoded.secrets == logon_calls
    for record in decoded.records:
        assert record.attr("Latency") is None or 0 <= record.attr("Latency") < 5
        assert record.attr("Process") > 0 and record.attr("Server").startswith("127.0.0.1:")


def test_real_session_pipelined_in_small_writes():
    decoded = replay(FIXTURES / "pipelined.chunks", Tag1Decoder)
    assert decoded.table(*ORDER, cim_class="Tag1_Order") == [
        ("c1", "ACME", "buy", 100, "10.25", "new", decoded.attrs("Tag1_Order")[0]["OrderId"], "accepted"),
        ("c2", "XYZ", "sell", 5, "3", "new", decoded.attrs("Tag1_Order")[1]["OrderId"], "accepted"),
    ]
    assert [a["OrderId"][0] for a in decoded.attrs("Tag1_Order")] == ["O", "O"]
    assert decoded.table(*CANCEL, cim_class="Tag1_Cancel") == [("x1", "c1", "cancelled", "cancelled")]
    assert decoded.table("User", "Status", cim_class="Tag1_Logon") == [("alice", "accepted")]
    assert decoded.problems == []
    chunks = load_chunks(FIXTURES / "pipelined.chunks").chunks
    assert any(c.data.count(b"\x0110=") > 1 for c in chunks), "the fixture should pipeline"
    assert any(not c.data.endswith(b"\x01") for c in chunks), "the fixture should split a message"


@pytest.mark.parametrize("name", ["session", "pipelined"])
def test_real_sessions_every_split_and_both_ends(name):
    fixture = load_chunks(FIXTURES / f"{name}.chunks")
    whole = assert_same_records(Tag1Decoder, fixture.chunks, fixture.channel)
    server_side = decode(Tag1Decoder, reversed_directions(fixture.chunks), channel(9878, server=True))
    attrs = ORDER + ("Latency",)
    assert server_side.table(*attrs, cim_class="Tag1_Order") == whole.table(*attrs, cim_class="Tag1_Order")
    assert server_side.secrets == whole.secrets
    assert len(server_side.problems) == len(whole.problems)


# -- built conversations -------------------------------------------------------------------------------


def test_a_session_whole_split_and_merged():
    decoded = assert_same_records(Tag1Decoder, session())
    assert decoded.table(*ORDER, cim_class="Tag1_Order") == SESSION_ORDERS
    assert decoded.table("Latency", cim_class="Tag1_Order") == [(0.25,), (0.25,)]
    assert decoded.table(*CANCEL, "Latency", cim_class="Tag1_Cancel") == [
        ("k1", "o1", "cancelled", "cancelled", 0.25)
    ]
    assert decoded.table("User", "Password", "Status", "Text", cim_class="Tag1_Logon") == [
        ("bob", "<redacted>", "accepted", "welcome")
    ]
    assert decoded.secrets == [1]
    assert "tag1: new order o1: buy 100 ACME @ 10.25" in decoded.notes()
    pipelined = decode(Tag1Decoder, merged(session()))  # every client message in one call
    assert pipelined.table(*ORDER, cim_class="Tag1_Order") == SESSION_ORDERS


def test_no_password_in_any_output():
    for decoded in (decode(Tag1Decoder, session()), replay(FIXTURES / "session.chunks", Tag1Decoder)):
        text = repr(decoded.records) + repr(decoded.notes()) + repr(decoded.problems)
        assert "hunter2" not in text and PASSWORD not in text and "Zx9K" not in text


class ContractOnly(Tag1Decoder):
    """The decoder as docs/decoders.md asks: one Secret naming the logon's first call, once it is whole."""

    eager_secrets = False


def secret_calls(outputs) -> list[int]:
    return [o.call_index for o in outputs if isinstance(o, Secret)]


@pytest.mark.parametrize("decoder_class", [Tag1Decoder, ContractOnly])
def test_reading_since_while_the_logon_is_half_read(decoder_class):
    decoder = decoder_class(channel(9878))
    cut_at = LOGON.index(b"hunter2") + 3
    eager = decoder_class.eager_secrets
    assert secret_calls(decoder.feed(chunk(LOGON[:cut_at], OUT, time=1.0, call_index=7))) == (
        [7] if eager else []
    )
    assert decoder.reading_since() == 7
    assert secret_calls(decoder.feed(chunk(LOGON[cut_at:-4], OUT, time=1.1, call_index=9))) == (
        [9] if eager else []
    )
    assert decoder.reading_since() == 7
    outputs = decoder.feed(chunk(LOGON[-4:], OUT, time=1.2, call_index=11))
    assert decoder.reading_since() is None
    assert secret_calls(outputs) == ([7, 11] if eager else [7])
    # the server's welcome is no secret, nor are the orders
    assert secret_calls(decoder.feed(chunk(WELCOME, IN, time=1.3, call_index=12))) == []
    assert secret_calls(decoder.feed(chunk(ORDER_1, OUT, time=1.4, call_index=13))) == []


def test_replies_matched_by_client_order_id_not_by_order():
    chunks = conversation([(OUT, ORDER_1), (OUT, ORDER_2), (IN, REPORT_2), (IN, REPORT_1)], step=0.5)
    decoded = decode(Tag1Decoder, chunks)
    assert decoded.table("ClOrdId", "Status", "Latency", cim_class="Tag1_Order") == [
        ("o2", "rejected", 0.5),
        ("o1", "new", 1.5),
    ]


def test_prices_are_decimals_exactly_as_sent():
    """A price is a DECIMAL: written as the client sent it (no float rounding, no lost zero), and left
    out, never a failure of the decoder, when the peer sent no number."""
    prices = ["10.250", "0.1", "12345678901234567890.01", "-3", "abc", "1,5", ""]
    orders = []
    for i, price in enumerate(prices):
        orders.append((OUT, msg((35, "D"), (11, f"p{i}"), (55, "A"), (54, "1"), (38, "1"), (44, price))))
        orders.append((IN, msg((35, "8"), (37, f"P{i}"), (11, f"p{i}"), (39, "0"))))
    decoded = decode(Tag1Decoder, conversation(orders))
    assert decoded.table("ClOrdId", "Price", cim_class="Tag1_Order") == [
        ("p0", "10.250"), ("p1", "0.1"), ("p2", "12345678901234567890.01"), ("p3", "-3"),
        ("p4", None), ("p5", None), ("p6", None),
    ]  # fmt: skip
    assert decoded.problems == []


def test_traced_on_the_server():
    decoded = decode(Tag1Decoder, reversed_directions(session()), channel(9878, server=True))
    assert decoded.table(*ORDER, cim_class="Tag1_Order") == SESSION_ORDERS
    assert decoded.secrets == [1]


def test_refused_logon():
    refused = msg((35, "5"), (58, "logon refused"))
    decoded = decode(Tag1Decoder, conversation([(OUT, LOGON), (IN, refused)]))
    assert decoded.table("User", "Status", "Text", cim_class="Tag1_Logon") == [
        ("bob", "refused", "logon refused")
    ]


def test_unanswered_requests_are_unknown_at_close():
    decoded = decode(Tag1Decoder, conversation([(OUT, LOGON), (OUT, ORDER_1), (OUT, CANCEL_1)]))
    assert decoded.table("Status", cim_class="Tag1_Logon") == [("unknown",)]
    assert decoded.table("ClOrdId", "Status", "Latency", cim_class="Tag1_Order") == [("o1", "unknown", None)]
    assert decoded.table("ClOrdId", "Status", cim_class="Tag1_Cancel") == [("k1", "unknown")]


def test_bad_checksum_is_a_problem_and_the_message_still_decodes():
    spoiled = ORDER_1[:-4] + b"%03d\x01" % ((int(ORDER_1[-4:-1]) + 1) % 256)
    decoded = decode(
        Tag1Decoder,
        conversation([(OUT, LOGON), (IN, WELCOME), (OUT, spoiled), (OUT, ORDER_2), (IN, REPORT_2)]),
    )
    (problem,) = decoded.problems
    assert problem.severity == "error" and problem.call_index == 3
    assert f"it says {(int(ORDER_1[-4:-1]) + 1) % 256:03d}" in problem.message
    assert decoded.table("ClOrdId", "Status", cim_class="Tag1_Order") == [
        ("o2", "rejected"),
        ("o1", "unknown"),
    ]


def test_malformed_checksum_and_untyped_message():
    chunks = conversation(
        [(OUT, b"35=D\x0111=o9\x0110=12x\x01"), (OUT, msg((11, "o8"))), (OUT, ORDER_1), (IN, REPORT_1)]
    )
    decoded = decode(Tag1Decoder, chunks)
    assert [p.severity for p in decoded.problems] == ["warning", "warning"]
    assert "malformed checksum" in decoded.problems[0].message
    assert "without a type" in decoded.problems[1].message
    assert ("o1", "new") in decoded.table("ClOrdId", "Status", cim_class="Tag1_Order")


# -- cut buffers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(SESSION)))
def test_any_message_cut_and_the_next_still_decode(index):
    decoded = decode(Tag1Decoder, cut(session(), index, 12))
    orders = decoded.attrs("Tag1_Order")
    cut_data = SESSION[index][1]
    expect_o2 = cut_data not in (ORDER_2, REPORT_2)
    if expect_o2:  # every message after the cut one is whole
        assert ("o2", "XYZ", "rejected") in decoded.table(
            "ClOrdId", "Symbol", "Status", cim_class="Tag1_Order"
        )
    assert all(not o.get("Truncated") for o in orders if o["ClOrdId"] == "o2") or not expect_o2
    if cut_data == ORDER_1:  # "35=D<SOH>11=o1": the id's field is cut, the reply names it
        (first, *_) = orders
        assert first["Truncated"] == "true" and first["ClOrdId"] == "o1" and first.get("Symbol") is None
        assert first["Status"] == "new"
    if cut_data == LOGON:
        assert decoded.secrets == [1]
        assert decoded.table("Status", "Truncated", cim_class="Tag1_Logon") == [("accepted", "true")]


def test_a_cut_pipelined_call_loses_its_tail_and_resynchronises():
    pipelined = merged(session())
    cut_index = next(i for i, c in enumerate(pipelined) if ORDER_1 in c.data)
    decoded = decode(Tag1Decoder, cut(pipelined, cut_index, len(ORDER_1) + 5))
    # o1 came whole; o2 and the cancel were in the lost tail: their replies are answers to nothing known
    assert ("o1", "new", None) in decoded.table("ClOrdId", "Status", "Truncated", cim_class="Tag1_Order")
    assert decoded.table("ClOrdId", "Status", "Truncated", cim_class="Tag1_Order")[-1][2] in ("true", None)


def test_a_field_longer_than_the_cap_is_cut_and_the_stream_goes_on():
    huge = msg((35, "D"), (11, "big"), (55, "S" * (MAX_FIELD * 4)), (54, "1"), (38, "1"), (44, "1"))
    decoded = decode(Tag1Decoder, conversation([(OUT, huge), (OUT, ORDER_1), (IN, REPORT_1)]))
    rows = decoded.table("ClOrdId", "Status", "Truncated", cim_class="Tag1_Order")
    assert ("o1", "new", None) in rows and ("big", "unknown", "true") in rows


def test_pending_requests_are_capped():
    orders = [
        (OUT, msg((35, "D"), (11, f"o{i}"), (55, "A"), (54, "1"), (38, "1"), (44, "1")))
        for i in range(MAX_PENDING + 10)
    ]
    decoder = Tag1Decoder(channel(9878))
    for c in conversation(orders):
        decoder.feed(c)
        assert len(decoder.pending) <= MAX_PENDING


# -- detection and garbage -----------------------------------------------------------------------------


def test_score():
    client = channel(9878)
    assert Tag1Decoder.score(LOGON, OUT, client) == 100
    assert Tag1Decoder.score(LOGON[:20], OUT, client) == 60
    assert Tag1Decoder.score(LOGON[:-5] + b"999\x01", OUT, client) == 60
    for other in (b"GET / HTTP/1.1\r\n", b"\x16\x03\x01\x02\x00", b"", b"35=", b"35=AB\x01", b"KV1 kvd\n"):
        assert Tag1Decoder.score(other, OUT, client) == 0


def test_garbage_never_raises():
    assert_never_raises(Tag1Decoder, [garbage(seed) for seed in range(30)])
    tag1_bytes = b"0123456789=\x01ADF58" + b"35=D\x0110="
    assert_never_raises(Tag1Decoder, [garbage(seed, alphabet=tag1_bytes) for seed in range(30)])


fields = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="=\x01"), min_size=1, max_size=12
)


@settings(max_examples=60, deadline=None)
@given(
    orders=st.lists(
        st.tuples(
            fields, st.sampled_from(["1", "2"]), st.integers(1, 10**9), st.decimals("0.01", 10**6, places=2)
        ),
        min_size=1,
        max_size=6,
    ),
    seed=st.integers(0, 1000),
)
def test_any_orders_decode_as_sent(orders, seed):
    messages = []
    for i, (symbol, side, quantity, price) in enumerate(orders):
        messages.append(
            (
                OUT,
                msg(
                    (35, "D"), (11, f"id{i}"), (55, symbol), (54, side), (38, str(quantity)), (44, str(price))
                ),
            )
        )
        messages.append((IN, msg((35, "8"), (37, f"N{i}"), (11, f"id{i}"), (39, "0"))))
    decoded = assert_same_records(Tag1Decoder, conversation(messages), seeds=[seed])
    assert decoded.table(
        "ClOrdId", "Symbol", "Side", "Quantity", "Price", "OrderId", cim_class="Tag1_Order"
    ) == [
        (f"id{i}", symbol, {"1": "buy", "2": "sell"}[side], quantity, str(price), f"N{i}")
        for i, (symbol, side, quantity, price) in enumerate(orders)
    ]
