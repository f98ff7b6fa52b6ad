"""Fingerprints (dockit_core/outputs/digest/fingerprint.py) against pt-query-digest's own, run here on a
corpus of statements (Debian's percona-toolkit: pt-fingerprint is pt-query-digest's fingerprint code,
QueryRewriter::fingerprint, as a command); PostgreSQL's quoting; Redis and HTTP on strings; the quantile
sketch against the exact quantiles of the durations the test draws."""

from __future__ import annotations

import math
import random
import re
import shutil
import subprocess

import pytest

from dockit_core.outputs.digest.fingerprint import (
    SqlFingerprints,
    http_fingerprint,
    key_pattern,
    query_id,
    redis_fingerprint,
    sql_fingerprint,
)
from dockit_core.outputs.digest.sketch import RELATIVE_ACCURACY, QuantileSketch
from tests.conftest import REPO

CORPUS = REPO / "tests/data/digest_corpus.sql"

# Where dockit's fingerprint differs from pt-query-digest's on purpose (beyond spacing: pt keeps the
# author's spaces, `id=?` and `id = ?` are two fingerprints there, one here), and why.
DIFFERENT_ON_PURPOSE = {
    "select * from t1 join t2 on t1.id = t2.t1_id where t1.x = 0x1F": (
        "pt's number pattern stops at the upper-case F of a hex literal and leaves `?f`; the literal is one value"
    ),
    "select count(*) from sessions where token = 'abc''def' and expires > 1700000000": (
        "pt reads a doubled quote as two strings (`??`); SQL reads one string"
    ),
    "select a from b where c is null": "IS NULL is no value but a different predicate: pt writes `is ?`",
    "select a from b where c is not null": "IS NOT NULL likewise (pt: `is not ?`)",
    "select `Order`.`Id` from `Order` where `Order`.`Id` = 1": (
        "a quoted identifier is kept as written (table names are case-sensitive in MySQL on Linux); pt "
        "lower-cases everything"
    ),
}


def corpus() -> list[str]:
    text = CORPUS.read_text()
    return [statement.strip() for statement in re.split(r";\n", text) if statement.strip()]


def spaceless(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def pt_fingerprints() -> dict[str, str]:
    if shutil.which("pt-fingerprint") is None:
        pytest.skip("pt-fingerprint is not installed (Debian package percona-toolkit; setup.sh installs it)")
    found = {}
    for statement in corpus():
        # --match-embedded-numbers: `t1` stays `t1` (without it pt writes `t?`, so that the tables t1 and
        # t2 would be one query); one statement a call, as pt's file reader joins a leading comment to the
        # statement before it.
        # (pt-fingerprint 3.2.1 exits with 1 after printing a fingerprint: its output is what counts)
        result = subprocess.run(
            ["pt-fingerprint", "--match-embedded-numbers", "--query", statement],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.stdout.strip() and not result.stderr, (statement, result.stderr)
        found[statement] = result.stdout.strip()
    return found


def test_corpus_fingerprints_are_pt_query_digests(pt_fingerprints: dict[str, str]) -> None:
    differ = {}
    for statement, theirs in pt_fingerprints.items():
        ours = sql_fingerprint(statement).fingerprint
        if spaceless(ours) != spaceless(theirs):
            differ[statement] = (ours, theirs)
    assert set(differ) == set(DIFFERENT_ON_PURPOSE), differ
    assert len(pt_fingerprints) == 41


def test_corpus_groups_as_pt_query_digest_groups(pt_fingerprints: dict[str, str]) -> None:
    """Two statements share a fingerprint here exactly when they share one in pt-query-digest's report
    (spacing aside): the grouping, which is what the digest counts, is the same on the whole corpus."""
    statements = [s for s in pt_fingerprints if s not in DIFFERENT_ON_PURPOSE]
    for first in statements:
        for second in statements:
            ours = sql_fingerprint(first).fingerprint == sql_fingerprint(second).fingerprint
            theirs = spaceless(pt_fingerprints[first]) == spaceless(pt_fingerprints[second])
            assert ours == theirs, (first, second)
    # and they do group: as many queries as pt-query-digest finds, fewer than statements
    ours = {sql_fingerprint(s).fingerprint for s in statements}
    assert len(ours) == len({spaceless(pt_fingerprints[s]) for s in statements}) < len(statements)
    # the differences on purpose join what pt splits: `0x1F` and `255` are both one number, `'abc''def'`
    # and `"double quoted"` both one string
    assert sql_fingerprint("select * from t1 join t2 on t1.id = t2.t1_id where t1.x = 0x1F").fingerprint == (
        sql_fingerprint("select * from t1 join t2 on t1.id = t2.t1_id where t1.x = 255").fingerprint
    )


def test_query_id_is_pt_query_digests() -> None:
    """pt-query-digest names a query by the MD5 of its fingerprint; `pt-query-digest --type slowlog` on
    a slow log of one statement prints that ID, and ours is the same for the same fingerprint."""
    if shutil.which("pt-query-digest") is None:
        pytest.skip("pt-query-digest is not installed (Debian package percona-toolkit)")
    slowlog = (
        "# Time: 2026-12-03T10:00:00.000000Z\n# User@Host: root[root] @ localhost []  Id: 5\n"
        "# Query_time: 0.001000  Lock_time: 0.000000 Rows_sent: 1  Rows_examined: 1\n"
        "SET timestamp=1764756000;\nselect name from customers where id = 7;\n"
    )
    result = subprocess.run(
        ["pt-query-digest", "--type", "slowlog", "--no-version-check", "-"],
        input=slowlog, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    ids = re.findall(r"Query 1: .*?ID (0x[0-9A-F]+)", result.stdout)
    assert ids == [query_id(sql_fingerprint("select name from customers where id = 7").fingerprint)]


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ('SELECT "Name" FROM "Users" WHERE id = 3', 'select "Name" from "Users" where id = ?'),
        ("select * from t where a = $1 and b = $2", "select * from t where a = $1 and b = $2"),
        (
            "select * from t where a = E'it\\'s' and b = 'back\\' and c = 1",
            "select * from t where a = ? and b = ? and c = ?",
        ),
        ("select $$a 'quoted' $$ || $tag$ x $tag$", "select ? || ?"),
        (
            "select x::int, '5'::text from t where id in ($1, $2, $3)",
            "select x::int, ?::text from t where id in(?+)",
        ),
        ("-- leading\nSELECT 1; ", "select ?"),
    ],
)
def test_postgresql_quoting(statement: str, expected: str) -> None:
    assert sql_fingerprint(statement, "postgresql").fingerprint == expected


def test_mysql_reads_double_quotes_as_strings_and_backslash_escapes() -> None:
    assert sql_fingerprint("select \"a\\\"b\" , 'x\\'y' from t").fingerprint == "select ?, ? from t"
    assert sql_fingerprint("select 1 # hash comment\n from t").fingerprint == "select ? from t"


def test_placeholders_stay_and_lists_collapse() -> None:
    assert (
        sql_fingerprint("SELECT * FROM t WHERE a = ? AND b = :name").fingerprint
        == "select * from t where a = ? and b = :name"
    )
    assert (
        sql_fingerprint("select * from t where id in (1,2)").fingerprint
        == sql_fingerprint("select * from t where id in (?, ?, ?, ?)").fingerprint
    )
    # a list holding anything but values is a different query
    assert sql_fingerprint("select * from t where id in (select id from u)").fingerprint == (
        "select * from t where id in (select id from u)"
    )


def test_flags_from_the_shape() -> None:
    assert sql_fingerprint("UPDATE t SET a = 1").write_without_where
    assert sql_fingerprint("delete from t").write_without_where
    assert sql_fingerprint("update t set a = (select max(b) from u where u.x = 1)").write_without_where
    assert not sql_fingerprint("update t set a = 1 where id = 2").write_without_where
    assert not sql_fingerprint("select * from t").write_without_where
    assert not sql_fingerprint("insert into t values (1)").write_without_where


def test_text_cut_by_the_trace_still_fingerprints() -> None:
    cut = sql_fingerprint("select * from t where name = 'unfinished str").fingerprint
    assert cut == "select * from t where name = ?"


@pytest.mark.parametrize(
    ("command", "arguments", "expected"),
    [
        ("get", ["user:42"], "GET user:?"),
        ("GET", ["user:43"], "GET user:?"),
        ("SET", ["session:3f2a9c1d4e5b6a7c", "value", "EX", "60"], "SET session:?"),
        ("HSET", ["cart:550e8400-e29b-41d4-a716-446655440000", "item", "1"], "HSET cart:?"),
        ("GET", ["feed:cafe"], "GET feed:cafe"),  # a word made of hex letters is no id
        ("GET", ["order_1234/lines"], "GET order_?/lines"),
        ("MGET", ["user:1", "user:2", "user:3"], "MGET user:?+"),
        ("MGET", ["user:1", "user:2", "config"], "MGET user:?+ config"),
        ("DEL", ["a:1", "b:2"], "DEL a:? b:?"),
        ("MSET", ["k:1", "v1", "k:2", "v2"], "MSET k:?+"),
        ("AUTH", ["secret"], "AUTH"),
        ("SELECT", ["3"], "SELECT"),
        ("PING", [], "PING"),
        ("client", ["setname", "worker-7"], "CLIENT SETNAME"),
        ("EVALSHA", ["0123abcd", "2", "lock:9", "lock:10", "arg"], "EVALSHA ? lock:?+"),
    ],
)
def test_redis_fingerprint(command: str, arguments: list[str], expected: str) -> None:
    assert redis_fingerprint(command, arguments) == expected


def test_redis_key_pattern_keeps_words() -> None:
    assert key_pattern("rate-limit:api:2026-12-03") == "rate-limit:api:?-?-?"
    assert key_pattern("users") == "users"


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("GET", "/users/42/orders?page=2", "GET /users/{id}/orders"),
        ("get", "/users/550e8400-e29b-41d4-a716-446655440000", "GET /users/{id}"),
        ("DELETE", "http://api.example:8080/items/5f0c1a2b3c4d5e6f7a8b9c0d#top", "DELETE /items/{id}"),
        ("GET", "/v2/feed", "GET /v2/feed"),
        ("POST", "/helloworld.Greeter/SayHello", "POST /helloworld.Greeter/SayHello"),
        (None, None, "? /"),
    ],
)
def test_http_fingerprint(method: str | None, url: str | None, expected: str) -> None:
    assert http_fingerprint(method, url) == expected


def test_sketch_quantiles_within_its_accuracy_whatever_the_count() -> None:
    rng = random.Random(13)
    for count in (1, 7, 1000, 200_000):
        values = [rng.lognormvariate(-6, 1.5) for _ in range(count)]
        sketch = QuantileSketch()
        for value in values:
            sketch.add(value)
        values.sort()
        for q in (0.5, 0.95):
            exact = values[max(0, math.ceil(q * count) - 1)]  # nearest rank
            assert abs(sketch.quantile(q) - exact) <= RELATIVE_ACCURACY * exact * 1.0001, (count, q)  # type: ignore[operator]
        assert len(sketch.buckets) <= 256
    assert QuantileSketch().quantile(0.5) is None


def test_sketch_memory_is_bounded_and_the_slow_end_kept() -> None:
    sketch = QuantileSketch()
    for exponent in range(-120, 40):  # 1e-12 s to 1e4 s: more buckets than it keeps
        sketch.add(10 ** (exponent / 10))
    assert len(sketch.buckets) <= 256
    assert sketch.quantile(1.0) == pytest.approx(10**3.9)
    assert abs(sketch.quantile(0.95) - 10**3.1) <= RELATIVE_ACCURACY * 10**3.1 * 1.0001  # type: ignore[operator]


def test_the_skeleton_cache_gives_the_tokenizers_fingerprint() -> None:
    """A loop's executions are fingerprinted through a cache keyed by the text with its values taken
    out in one pass (SqlFingerprints): every statement of the corpus, and each with its numbers and
    strings changed, has the fingerprint the tokenizer gives it alone, in either dialect."""
    rng = random.Random(5)
    statements = corpus() + [
        "select * from t where a = 'x' and b = \"y\" and c = `t 1`",
        "select x1.5, t2.c3 from t2 where t2.c3 = :1 and d = $1 and @v1 = 7",
        "select 0x1G, 0x1F, 1e5, .5, -3 from t",
        "select 'it''s', E'a' from t where a = 'b' -- 'c",
    ]
    cached = SqlFingerprints()
    for statement in statements:
        for protocol in ("mysql", "postgresql"):
            variants = [statement]
            for _ in range(3):
                changed = re.sub(r"\d+", lambda _m: str(rng.randint(0, 99999)), statement)
                variants.append(re.sub(r"'[^']*'", lambda _m: f"'{rng.random()}'", changed))
            for text in variants:
                assert cached.shape(text, protocol) == sql_fingerprint(text, protocol), (protocol, text)
