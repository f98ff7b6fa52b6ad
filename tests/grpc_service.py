"""A real gRPC service for the tests: its .proto, code generated at test time by grpc_tools.protoc, a
server (grpcio, with reflection on request) and a client that makes every kind of call.

    python3 tests/grpc_service.py generate DIR                  # inventory.proto, _pb2 modules, inventory.desc
    python3 tests/grpc_service.py serve DIR PORT [--reflection]  # serves until killed
    python3 tests/grpc_service.py client DIR PORT [--reflection] # the calls of CALLS, then exits 0

The client's calls, in order (what the tests expect of the summary):
- GetItem(id=7) unary, OK, with a 5 s deadline
- GetItem(id=404) unary, NOT_FOUND "no item 404"
- AddItems: client streaming, 3 items in, one summary out
- ListItems(limit=4): server streaming, 4 items out
- Chat: bidi, 2 notes in, 2 echoes out
With --reflection, it first asks the server's reflection service for the file that defines the service
(on the same channel, so on the same HTTP/2 connection).
"""

from __future__ import annotations

import os
import subprocess
import sys

PROTO = """
syntax = "proto3";
package dockit.test;

enum Kind { KIND_UNSPECIFIED = 0; TOOL = 1; BOOK = 2; }

message Owner { string name = 1; string password = 2; }

message Item {
  int64 id = 1;
  string name = 2;
  double price = 3;
  repeated string tags = 4;
  Kind kind = 5;
  Owner owner = 6;
  repeated int32 counts = 7;
  sint32 delta = 8;
}

message ItemRequest { int64 id = 1; }
message ListRequest { int32 limit = 1; }
message Summary { int32 added = 1; double total = 2; }
message Note { string text = 1; int32 seq = 2; }

service Inventory {
  rpc GetItem(ItemRequest) returns (Item);
  rpc AddItems(stream Item) returns (Summary);
  rpc ListItems(ListRequest) returns (stream Item);
  rpc Chat(stream Note) returns (stream Note);
}
"""

SERVICE = "dockit.test.Inventory"
# (method, streaming kind, request messages, response messages, grpc status code)
CALLS = [
    ("GetItem", "unary", 1, 1, 0),
    ("GetItem", "unary", 1, 0, 5),
    ("AddItems", "client", 3, 1, 0),
    ("ListItems", "server", 1, 4, 0),
    ("Chat", "bidi", 2, 2, 0),
]
OWNER_PASSWORD = "hunter2-in-a-message"


def generate(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "inventory.proto"), "w") as out:
        out.write(PROTO)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{folder}",
            f"--python_out={folder}",
            f"--grpc_python_out={folder}",
            f"--descriptor_set_out={os.path.join(folder, 'inventory.desc')}",
            "--include_imports",
            os.path.join(folder, "inventory.proto"),
        ],
        check=True,
    )


def _modules(folder: str):  # type: ignore[no-untyped-def]
    sys.path.insert(0, folder)
    import inventory_pb2
    import inventory_pb2_grpc

    return inventory_pb2, inventory_pb2_grpc


def serve(folder: str, port: int, reflection: bool) -> None:
    from concurrent import futures

    import grpc

    pb2, pb2_grpc = _modules(folder)

    class Inventory(pb2_grpc.InventoryServicer):
        def GetItem(self, request, context):  # type: ignore[no-untyped-def]
            if request.id != 7:
                context.abort(grpc.StatusCode.NOT_FOUND, f"no item {request.id}")
            return pb2.Item(
                id=7,
                name="hammer",
                price=12.5,
                tags=["steel", "heavy"],
                kind=pb2.TOOL,
                owner=pb2.Owner(name="ada", password=OWNER_PASSWORD),
                counts=[1, 2, 3],
                delta=-3,
            )

        def AddItems(self, request_iterator, context):  # type: ignore[no-untyped-def]
            items = list(request_iterator)
            return pb2.Summary(added=len(items), total=sum(item.price for item in items))

        def ListItems(self, request, context):  # type: ignore[no-untyped-def]
            for index in range(request.limit):
                yield pb2.Item(id=index, name=f"item{index}", kind=pb2.BOOK)

        def Chat(self, request_iterator, context):  # type: ignore[no-untyped-def]
            for note in request_iterator:
                yield pb2.Note(text=f"echo {note.text}", seq=note.seq)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb2_grpc.add_InventoryServicer_to_server(Inventory(), server)
    if reflection:
        from grpc_reflection.v1alpha import reflection as service_reflection

        names = (pb2.DESCRIPTOR.services_by_name["Inventory"].full_name, service_reflection.SERVICE_NAME)
        service_reflection.enable_server_reflection(names, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("serving", flush=True)
    server.wait_for_termination()


def client(folder: str, port: int, reflection: bool) -> None:
    import grpc

    pb2, pb2_grpc = _modules(folder)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        if reflection:
            from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
                ProtoReflectionDescriptorDatabase,
            )

            database = ProtoReflectionDescriptorDatabase(channel)
            assert SERVICE in database.get_services()
            database.FindFileContainingSymbol(SERVICE)
        stub = pb2_grpc.InventoryStub(channel)
        item = stub.GetItem(pb2.ItemRequest(id=7), timeout=5)
        assert item.name == "hammer"
        try:
            stub.GetItem(pb2.ItemRequest(id=404))
            raise AssertionError("GetItem(404) should have failed")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
        summary = stub.AddItems(iter([pb2.Item(id=n, name=f"new{n}", price=1.5) for n in range(3)]))
        assert summary.added == 3
        assert len(list(stub.ListItems(pb2.ListRequest(limit=4)))) == 4
        notes = list(stub.Chat(iter([pb2.Note(text="hi", seq=1), pb2.Note(text="bye", seq=2)])))
        assert [note.text for note in notes] == ["echo hi", "echo bye"]


if __name__ == "__main__":
    command, folder = sys.argv[1], sys.argv[2]
    if command == "generate":
        generate(folder)
    elif command == "serve":
        serve(folder, int(sys.argv[3]), "--reflection" in sys.argv)
    else:
        client(folder, int(sys.argv[3]), "--reflection" in sys.argv)
