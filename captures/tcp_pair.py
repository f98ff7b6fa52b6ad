"""tcp_pair: a TCP server on 127.0.0.1 that forks its own client, so one trace holds both ends.
The client sends 16 bytes and the server answers 9. Recorded by record.py; see FACTS.md."""

import os
import socket
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 47613

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", PORT))
server.listen(1)
child = os.fork()
if child == 0:
    server.close()
    client = socket.create_connection(("127.0.0.1", PORT))
    client.sendall(b"ping from client")  # 16 bytes
    reply = client.recv(100)
    client.close()
    os._exit(0 if reply == b"pong back" else 1)
connection, _peer = server.accept()
request = connection.recv(100)
connection.sendall(b"pong back")  # 9 bytes
connection.close()
_pid, status = os.waitpid(child, 0)
sys.exit(os.waitstatus_to_exitcode(status))
