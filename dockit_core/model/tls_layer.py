"""The TLS of one connection: its records on the socket, and its plaintext when the trace shows it.

A channel becomes encrypted when its first bytes are a ClientHello (HTTPS, Redis over TLS...) or when
its decoder says the conversation turns to TLS (`StartTls`: MySQL's SSL request, PostgreSQL's `S`).
From then on the socket's bytes are TLS records: the TLS decoder reads what the handshake shows in
clear (server name, version, cipher, ALPN, the certificate before TLS 1.3). The plaintext, which only
library calls carry (ltrace's `SSL_write`/`SSL_read`, `gnutls_record_send`/`_recv`), goes to the
channel's decoder: the same one that read the clear start of the conversation, or one chosen on the
plaintext (by ALPN when the handshake named the protocol). So one connection tells one story.

This layer keeps the state that is the TLS's own: the TLS decoder, which kind of call shows each
direction's plaintext (each byte once when both ends are traced), the plaintext byte counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from decoders.api import ChannelInfo, Chunk, Decoder
from decoders.records import CimObject, Output, TlsSession

PLAINTEXT_HINT = "its plaintext crosses no system call: trace with -t ltrace to decode it"
LIBRARY_HINT = (
    "no OpenSSL or GnuTLS call showed its plaintext (a TLS library ltrace does not hook: Go, Java, "
    "rustls, or one linked statically)"
)


class TlsLayer:
    """One encrypted channel's TLS: created by the channel manager, fed ciphertext and plaintext."""

    def __init__(self, info: ChannelInfo, cipher: Decoder | None = None, inner: str | None = None) -> None:
        self.info = info
        self.cipher = cipher  # the TLS decoder of the socket's records (made at their first bytes)
        self.inner = inner  # the name of the decoder of the plaintext, once there is one
        self.plain_source_by_side: list[str | None] = [None, None]  # out, in: "read" or "write"
        self.plain_bytes = [0, 0]
        self.failed = False

    def feed_cipher(self, chunk: Chunk) -> None:
        """The socket's bytes: TLS records. The TLS decoder returns nothing before its close."""
        if self.failed:
            return
        if self.cipher is None:
            from decoders.tls import TlsDecoder

            self.cipher = TlsDecoder(self.info)
        try:
            self.cipher.feed(chunk)
        except Exception:  # noqa: BLE001 - the TLS facts are lost, never the trace
            self.failed = True

    def facts(self) -> dict[str, str | None]:
        """Encrypted, version, cipher, server name: what the handshake showed, for a session object."""
        facts: dict[str, str | None] = {"Encrypted": "true"}
        read = getattr(self.cipher, "facts", None)
        if read is not None and not self.failed:
            try:
                facts.update(read())
            except Exception:  # noqa: BLE001
                pass
        return facts

    def alpn(self) -> str | None:
        return self.facts().get("Alpn")

    def plaintext_info(self, info: ChannelInfo) -> ChannelInfo:
        """The channel as the plaintext's decoder sees it: encrypted, with the protocol ALPN agreed on."""
        return replace(info, encrypted=True, alpn=self.alpn())

    def enrich(self, cim: CimObject) -> CimObject:
        """A database session of this channel, with what its TLS showed (attributes the decoder did not set)."""
        present = {name for name, _ in cim.attrs}
        added = tuple(
            (name, value)
            for name, value in self.facts().items()
            if value is not None and name not in present and name != "Alpn"
        )
        return CimObject(cim.cim_class, cim.attrs + added, cim.children) if added else cim

    def close(self, time: float | None, plaintext_visible: bool) -> Sequence[Output]:
        """The `TlsSession` of the connection, with what the trace added: the protocol inside, the
        plaintext's size, or why it was not seen."""
        if self.cipher is None or self.failed:
            return ()
        try:
            outputs = list(self.cipher.close(time))
        except Exception:  # noqa: BLE001
            return ()
        extra: dict[str, str | int | None] = {}
        if self.inner:
            extra["Protocol"] = self.inner
        out, in_ = self.plain_bytes
        if self.plain_source_by_side != [None, None]:
            extra["PlaintextBytesOut"], extra["PlaintextBytesIn"] = out, in_
        else:
            extra["Plaintext"] = "false"
            extra["Hint"] = LIBRARY_HINT if plaintext_visible else PLAINTEXT_HINT
        done: list[Output] = []
        for output in outputs:
            if isinstance(output, TlsSession):
                output.extra.update(extra)
                done.append(output)
            elif isinstance(output, CimObject) and output.cim_class == "Dockit_TlsSession":
                done.append(CimObject(output.cim_class, output.attrs + tuple(extra.items()), output.children))
            else:
                done.append(output)
        return done
