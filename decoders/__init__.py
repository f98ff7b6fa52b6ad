"""Protocol decoders: stateful, sans-IO, one per connection; they turn a channel's bytes into records.

The public surface, which a decoder of your own may import and which dockit keeps stable (a test
fails if one of its names disappears; see docs/decoders.md):

- `decoders.api`: the contract (`Decoder`, `Chunk`, `Direction`, `ChannelInfo`, `DecoderOptions`).
- `decoders.records`: what a decoder returns (`Output`: a `Record`, `CimObject`, `Annotation`,
  `Secret`, `Problem` or `StartTls`), the typed-record declarations (`RecordType`, `ChildType` and
  the field types `TIME`, `DURATION`, `COUNT`, `DECIMAL`, `BYTES`, `TEXT`, `SECRET`, `FLAG`), and the
  shared records `SqlQuery`, `DatabaseSession`, `HttpExchange`, `TlsSession`, `BrokerMessage`,
  `BrokerOperation`, `BrokerSession`.
- `decoders.framing`: message reassembly, one reader per direction (`LineReader`, `LengthPrefixed`,
  `TLV`, their `Frame`s, and `reading_since`).
- `decoders.redact`: the helpers that keep secrets out of outputs (`redact_sql`, `redact_url`,
  `redact_header`, `redact_row`, `is_secret_header`, `is_secret_column`, `REDACTED`).
- `decoders.testing`, for a decoder's tests only: chunks from bytes and hex dumps, `decode`, every split
  (`assert_same_records`), `cut`, `garbage`, fixture files, `replay` of a log, fixture or pcap.

`tests/test_layout.py` lists every public name of these five modules.

Everything else here is dockit's own and may change in any release: the registry that picks a
decoder for a channel (`registry`), the built-in decoders (`mysql`, `http`, `tls`, `tns`, `amqp`,
`mqtt`, `nats`...), the SQL helpers they share (`sql_grammar`, `sql_tables`), and the broker decoders'
(`measured_frames`: frames whose size a protocol function measures, with resynchronisation;
`messaging`: bounded maps of what waits for an acknowledgement; `destinations`: the per-destination
counts of the summary).
"""
