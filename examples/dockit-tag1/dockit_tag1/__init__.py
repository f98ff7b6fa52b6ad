"""TAG1, a small FIX-like order protocol, and its dockit decoder.

A client connects over TCP and sends messages of `tag=value` fields, each ended by the byte 0x01 (SOH);
the first field is `35=TYPE` and the last `10=NNN`, the sum of the message's preceding bytes modulo 256
in three digits. Types:

    client  A logon      553=user 554=password (a secret)
    client  D new order  11=client order id 55=symbol 54=side (1 buy, 2 sell) 38=quantity 44=price
    client  F cancel     11=cancel id 41=original client order id
    client  5 logout
    server  A logon accepted;  5 logout (the answer to a logout, or a refused logon, with 58=text)
    server  8 execution report 37=order id 11=client order id 39=status (0 new, 8 rejected, 4 cancelled) 58=text
    server  9 cancel reject    11=cancel id 41=original id 58=text

The server answers every message in order; a client may pipeline, and a message may be split over
several reads. A message whose checksum is wrong is ignored by the server (no answer).

The decoder is `dockit_tag1.decoder:Tag1Decoder`; this package does not import it, so that the server
and client run without dockit installed.
"""
