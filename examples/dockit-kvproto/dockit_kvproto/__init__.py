"""KV1, a tiny in-house key-value protocol, and its dockit decoder (the worked example of docs/decoders.md).

The wire format, one UTF-8 line per message, each ending with "\\n" ("\\r\\n" is accepted):

    server, on connect:  KV1 <server name>
    client:              GET <key> | SET <key> <value> | DEL <key> | QUIT
    server, one reply:   OK | VALUE <value> | ERR <message>

Keys hold no spaces; a value is the rest of its line. Replies come in the order of the commands, so a
client may send several commands before reading (pipelining).
"""

from dockit_kvproto.decoder import KvDecoder

__all__ = ["KvDecoder"]
