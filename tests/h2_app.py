"""A small ASGI application for the HTTP/2 tests, served by hypercorn (h2c: prior knowledge and Upgrade;
TLS with ALPN h2): `python -m hypercorn tests.h2_app:app --bind 127.0.0.1:PORT`.

GET /hello -> 200 "hello"; POST /echo -> 200, the body back; GET /missing -> 404; GET /big?n=N -> 200,
N bytes; GET /pushed -> 200, after pushing /style.css (HTTP/2 server push); anything else -> 404.
"""

from __future__ import annotations

from urllib.parse import parse_qs


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path, method = scope["path"], scope["method"]
    status, content, kind = 404, b"not found\n", b"text/plain"
    if path == "/hello" and method == "GET":
        status, content = 200, b"hello\n"
    elif path == "/echo" and method == "POST":
        status, content, kind = 200, body, b"application/octet-stream"
    elif path == "/big":
        size = int(parse_qs(scope["query_string"].decode()).get("n", ["100000"])[0])
        status, content = 200, b"x" * size
    elif path == "/style.css":
        status, content, kind = 200, b"body { color: teal }\n", b"text/css"
    elif path == "/pushed":
        if "http.response.push" in scope.get("extensions", {}):
            await send({"type": "http.response.push", "path": "/style.css", "headers": []})
        status, content, kind = 200, b"<html>pushed</html>\n", b"text/html"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", kind), (b"content-length", str(len(content)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": content})
