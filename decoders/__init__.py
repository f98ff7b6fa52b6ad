"""Protocol decoders: stateful, sans-IO, one per connection; they turn a channel's bytes into records.

The public surface, which a decoder of your own may import and which dockit keeps stable (a test
fails if one of its names disappears; see docs/decoders.md):

- `decoders.api`: the contract (`Decoder`, `Chunk`, `Direction`, `ChannelInfo`, `DecoderOptions`).
- `decoders.records`: what a decoder returns (`CimObject`, `CimChild`, `Annotation`, `Secret`, and
  the shared records `SqlQuery`, `DatabaseSession`, `HttpExchange`, `TlsSession`, `BrokerMessage`,
  `BrokerOperation`, `BrokerSession`).
- `decoders.redact`: the helpers that keep secrets out of outputs (`redact_sql`, `redact_url`,
  `redact_header`, `redact_row`...).

Everything else here is dockit's own and may change in any release: the registry that picks a
decoder for a channel (`registry`), the built-in decoders (`mysql`, `http`, `tls`, `tns`, `amqp`,
`mqtt`, `nats`...), the SQL helpers they share (`sql_grammar`, `sql_tables`), and the broker decoders'
(`measured_frames`: frames whose size a protocol function measures, with resynchronisation;
`messaging`: bounded maps of what waits for an acknowledgement; `destinations`: the per-destination
counts of the summary).
"""
