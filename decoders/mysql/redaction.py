"""What the MySQL decoder hides besides what `decoders.redact` does for every decoder.

SQL text and column names go through the shared `redact_sql` only when `MAY_HOLD_SECRET` finds a word
its patterns need; sampled row values lose any auth hash they hold, whatever their column's name.
(Parameters bound to a secret are replaced in `queries`; auth data is never decoded: `session`.)
"""

from __future__ import annotations

import re

from decoders.redact import REDACTED

# redact_sql's patterns all need one of these words: most statements skip its substitutions.
MAY_HOLD_SECRET = re.compile("IDENTIFIED|PASSWORD", re.I).search
# Auth hashes in sampled values whatever their column is called (`concat('x', authentication_string)`,
# the JSON of MariaDB's mysql.global_priv): mysql_native_password's `*` and 40 hex digits, MySQL 8's
# caching_sha2 `$A$005$...` (to the value's end: its salt is raw bytes), a secret-named JSON key's value.
_HASH_IN_VALUE = re.compile(
    r"\*[0-9A-F]{40}(?![0-9A-F])|\$A\$[0-9A-F]{3}\$(?s:.*)"
    r'|(?P<key>"(?:authentication_string|password|auth_string)"\s*:\s*)"(?:[^"\\]|\\.)*"',
    re.I,
)


def redact_value(value: str) -> str:
    """A sampled value with any auth hash in it replaced (a password never travels in a result)."""
    if "*" not in value and "$" not in value and '":' not in value:
        return value
    return _HASH_IN_VALUE.sub(lambda m: f'{m["key"]}"{REDACTED}"' if m["key"] else REDACTED, value)
