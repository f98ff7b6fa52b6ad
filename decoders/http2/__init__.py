"""HTTP/2 and gRPC: `decoder` (Http2Decoder: preface, roles, frames, header blocks through hpack, streams),
`streams` (a stream's state and its HttpExchange), `grpc` (a call's messages, its Dockit_RpcCall, the
schema learned from reflection). The wire formats are `protocols.http2`, `protocols.grpc` and
`protocols.protobuf`."""

from decoders.http2.decoder import Http2Decoder

__all__ = ["Http2Decoder"]
