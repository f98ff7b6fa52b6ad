"""What the decoder knows of Redis commands: their names (two-word ones), the keys they read and write,
which block, and which arguments are secrets.

The key table follows the `COMMAND INFO` key specifications of Redis 7 (first key, last key, step;
negative last counts from the end), simplified to read or write: a command that reads a key to change
it (INCR, LPUSH, RENAME's source) writes it. Commands whose keys follow a count (`EVAL script numkeys
k1 k2`, `ZUNIONSTORE dest numkeys k1 k2`) or a keyword (`XREAD ... STREAMS k1 k2 id1 id2`) have their
own rules. A command missing from the table has no keys counted (its arguments are still shown).
"""

from __future__ import annotations

from collections.abc import Sequence

# Commands whose first argument is a subcommand: "CLIENT SETNAME", "CONFIG SET", "ACL SETUSER".
CONTAINERS = frozenset(
    {
        "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "LATENCY", "MEMORY", "MODULE",
        "OBJECT", "PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO",
    }
)  # fmt: skip

# Blocking commands: their wait is their Duration; a null reply means the timeout passed.
BLOCKING = frozenset(
    {
        "BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT",
        "WAITAOF",
    }
)  # fmt: skip
BLOCKING_WITH_OPTION = frozenset({"XREAD", "XREADGROUP"})  # block only with BLOCK ms

READ, WRITE = "read", "write"
# name -> (access, first key, last key, step); last -1 is the last argument, -2 the one before.
KeySpec = tuple[str, int, int, int]
_ONE_READ = (READ, 1, 1, 1)
_ONE_WRITE = (WRITE, 1, 1, 1)
_ALL_READ = (READ, 1, -1, 1)
_ALL_WRITE = (WRITE, 1, -1, 1)

KEY_SPECS: dict[str, tuple[KeySpec, ...]] = {}


def _specs(names: str, *specs: KeySpec) -> None:
    for name in names.split():
        KEY_SPECS[name] = specs


_specs(
    "GET STRLEN GETRANGE SUBSTR TYPE TTL PTTL EXPIRETIME PEXPIRETIME DUMP GETBIT BITCOUNT BITPOS BITFIELD_RO "
    "HGET HMGET HGETALL HKEYS HVALS HLEN HEXISTS HSTRLEN HRANDFIELD HSCAN "
    "LRANGE LLEN LINDEX LPOS SMEMBERS SISMEMBER SMISMEMBER SCARD SRANDMEMBER SSCAN "
    "ZRANGE ZRANGEBYSCORE ZREVRANGE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX ZSCORE ZMSCORE ZRANK "
    "ZREVRANK ZCARD ZCOUNT ZLEXCOUNT ZSCAN ZRANDMEMBER XRANGE XREVRANGE XLEN XPENDING "
    "GEOPOS GEODIST GEOHASH GEORADIUS_RO GEORADIUSBYMEMBER_RO GEOSEARCH SORT_RO",
    _ONE_READ,
)
_specs("EXISTS MGET SINTER SUNION SDIFF PFCOUNT TOUCH ZDIFF ZINTER ZUNION", _ALL_READ)
_specs("LCS", (READ, 1, 2, 1))
_specs(
    "SET SETNX SETEX PSETEX GETSET GETDEL GETEX APPEND INCR DECR INCRBY DECRBY INCRBYFLOAT SETRANGE "
    "EXPIRE PEXPIRE EXPIREAT PEXPIREAT PERSIST HSET HSETNX HMSET HDEL HINCRBY HINCRBYFLOAT "
    "LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LSET LREM LTRIM LINSERT SADD SREM SPOP "
    "ZADD ZREM ZINCRBY ZPOPMIN ZPOPMAX ZREMRANGEBYSCORE ZREMRANGEBYRANK ZREMRANGEBYLEX "
    "SETBIT BITFIELD PFADD XADD XDEL XTRIM XACK XCLAIM XAUTOCLAIM XSETID GEOADD RESTORE SORT "
    "GEORADIUS GEORADIUSBYMEMBER",
    _ONE_WRITE,
)
_specs("DEL UNLINK PFMERGE", _ALL_WRITE)
_specs("MSET MSETNX", (WRITE, 1, -1, 2))
_specs("RENAME RENAMENX LMOVE RPOPLPUSH BLMOVE BRPOPLPUSH SMOVE", (WRITE, 1, 2, 1))
_specs("COPY", (READ, 1, 1, 1), (WRITE, 2, 2, 1))
_specs("BLPOP BRPOP BZPOPMIN BZPOPMAX", (WRITE, 1, -2, 1))
_specs("SINTERSTORE SUNIONSTORE SDIFFSTORE", (WRITE, 1, 1, 1), (READ, 2, -1, 1))
_specs("BITOP", (WRITE, 2, 2, 1), (READ, 3, -1, 1))
_specs("GEOSEARCHSTORE ZRANGESTORE", (WRITE, 1, 1, 1), (READ, 2, 2, 1))
_specs("OBJECT MEMORY", (READ, 2, 2, 1))  # OBJECT ENCODING key, MEMORY USAGE key
_specs("XGROUP", (WRITE, 2, 2, 1))  # XGROUP CREATE key group id

# Keys after a count: name -> (index of the count, access of the keys, a destination before it).
NUMKEYS: dict[str, tuple[int, str, bool]] = {
    "EVAL": (2, WRITE, False),
    "EVALSHA": (2, WRITE, False),
    "EVAL_RO": (2, READ, False),
    "EVALSHA_RO": (2, READ, False),
    "FCALL": (2, WRITE, False),
    "FCALL_RO": (2, READ, False),
    "ZUNIONSTORE": (2, READ, True),
    "ZINTERSTORE": (2, READ, True),
    "ZDIFFSTORE": (2, READ, True),
    "SINTERCARD": (1, READ, False),
    "ZINTERCARD": (1, READ, False),
    "LMPOP": (1, WRITE, False),
    "ZMPOP": (1, WRITE, False),
    "BLMPOP": (2, WRITE, False),
    "BZMPOP": (2, WRITE, False),
}
for _name in ("ZDIFF", "ZINTER", "ZUNION"):
    NUMKEYS[_name] = (1, READ, False)
    del KEY_SPECS[_name]

# Subcommands of containers whose arguments hold no key (OBJECT HELP, MEMORY STATS).
_KEYED_SUBCOMMANDS = {"OBJECT": frozenset({"ENCODING", "FREQ", "IDLETIME", "REFCOUNT"}), "MEMORY": frozenset({"USAGE"}),
                      "XGROUP": frozenset({"CREATE", "SETID", "DESTROY", "CREATECONSUMER", "DELCONSUMER"})}  # fmt: skip


def command_name(args: Sequence[bytes]) -> str:
    """ "GET", "CLIENT SETNAME": the command's name as the summary shows it, upper case."""
    if not args:
        return ""
    name = args[0].decode("ascii", "replace").upper()
    if name in CONTAINERS and len(args) > 1:
        return f"{name} {args[1].decode('ascii', 'replace').upper()}"
    return name


def keys(args: Sequence[bytes]) -> list[tuple[int, str]]:
    """(argument index, access) of each key the command names: GET k -> [(1, "read")]."""
    if not args:
        return []
    name = args[0].decode("ascii", "replace").upper()
    count = len(args)
    found: list[tuple[int, str]] = []
    if name in NUMKEYS:
        at, access, destination = NUMKEYS[name]
        if destination and count > 1:
            found.append((1, WRITE))
        try:
            number = int(args[at]) if at < count else 0
        except ValueError:
            number = 0
        found += [(index, access) for index in range(at + 1, min(count, at + 1 + max(0, number)))]
        return found
    if name in ("XREAD", "XREADGROUP"):
        upper = [a.upper() for a in args]
        if b"STREAMS" in upper:
            first = upper.index(b"STREAMS") + 1
            streams = (count - first) // 2
            access = WRITE if name == "XREADGROUP" else READ
            return [(index, access) for index in range(first, first + streams)]
        return []
    if name == "MIGRATE":
        if count > 3 and args[3]:
            return [(3, WRITE)]
        upper = [a.upper() for a in args]
        if b"KEYS" in upper:
            return [(index, WRITE) for index in range(upper.index(b"KEYS") + 1, count)]
        return []
    specs = KEY_SPECS.get(name)
    if not specs:
        return []
    if name in _KEYED_SUBCOMMANDS and (
        count < 2 or args[1].upper().decode("ascii", "replace") not in _KEYED_SUBCOMMANDS[name]
    ):
        return []
    for access, first, last, step in specs:
        end = count + last + 1 if last < 0 else last + 1
        found += [(index, access) for index in range(first, min(end, count), step)]
    return found


def blocking(args: Sequence[bytes]) -> bool:
    if not args:
        return False
    name = args[0].upper()
    if name.decode("ascii", "replace") in BLOCKING:
        return True
    return name.decode("ascii", "replace") in BLOCKING_WITH_OPTION and b"BLOCK" in (a.upper() for a in args)


# --- secrets ----------------------------------------------------------------------------------------------

_SECRET_COMMANDS = frozenset({b"AUTH", b"HELLO", b"CONFIG", b"MIGRATE", b"ACL"})
SECRET_CONFIG = frozenset({b"REQUIREPASS", b"MASTERAUTH", b"TLS-KEY-FILE-PASS", b"TLS-CLIENT-KEY-FILE-PASS"})


def secret_arguments(args: Sequence[bytes]) -> set[int]:
    """The indexes of the arguments that are credentials: AUTH's password, HELLO ... AUTH user pw,
    CONFIG SET requirepass pw, MIGRATE ... AUTH pw / AUTH2 user pw, ACL SETUSER's `>pw`, `<pw`, `#hash`
    and `!hash` rules. The same rules hide them in `redis-cli ... AUTH pw` command lines."""
    if not args:
        return set()
    name = args[0].upper()
    if name not in _SECRET_COMMANDS:
        return set()
    count = len(args)
    if name == b"AUTH":
        return {count - 1} if count > 1 else set()
    upper = [a.upper() for a in args]
    if name == b"HELLO":
        return {index + 2 for index in range(count) if upper[index] == b"AUTH" and index + 2 < count}
    if name == b"CONFIG" and count > 1 and upper[1] == b"SET":
        return {index + 1 for index in range(2, count - 1, 2) if upper[index] in SECRET_CONFIG}
    if name == b"MIGRATE":
        found: set[int] = set()
        for index in range(count):
            if upper[index] == b"AUTH" and index + 1 < count:
                found.add(index + 1)
            elif upper[index] == b"AUTH2" and index + 2 < count:
                found.add(index + 2)
            elif upper[index] == b"KEYS":
                break
        return found
    if name == b"ACL" and count > 1 and upper[1] == b"SETUSER":
        return {index for index in range(3, count) if args[index][:1] in (b">", b"<", b"#", b"!")}
    return set()


# Replies that carry a credential: CONFIG GET requirepass, ACL GETUSER/LIST (password hashes).
def secret_reply(args: Sequence[bytes]) -> bool:
    if len(args) < 2:
        return False
    name, sub = args[0].upper(), args[1].upper()
    if name == b"CONFIG" and sub == b"GET":
        return any(
            a.upper() in SECRET_CONFIG or b"*" in a or b"PASS" in a.upper() or b"AUTH" in a.upper()
            for a in args[2:]
        )
    return name == b"ACL" and sub in (b"GETUSER", b"LIST")
