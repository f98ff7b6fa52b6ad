"""Wire formats, pure and sans-IO: complete frames in, messages out. No state beyond one message, no
I/O; framing across reads and the conversation's state are the decoders' job (`decoders/`)."""
