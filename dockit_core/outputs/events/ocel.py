"""OCEL 2.0 JSON (the object-centric event log standard, as pm4py and ocpa read it), written without
holding the run in memory: events are serialized as they come into a temporary file; objects, their
attribute changes and their relations go into a temporary SQLite database (on disk, so a run with
millions of files costs disk, not memory) that also drops repeated declarations. At commit the JSON is
assembled: object types, event types, objects, then the events copied through."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from collections import OrderedDict

from decoders.records import AttrValue
from dockit_core.outputs.atomic import AtomicStream
from dockit_core.outputs.events.source import LogEvent

RECENT = 4096  # object ids remembered in memory as already declared (the rest: the database knows)


def _type_name(value: AttrValue) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    return "string"


def _value(value: AttrValue) -> AttrValue:
    return value if isinstance(value, (int, float, bool)) or value is None else str(value)


class OcelLog:
    def __init__(self, path: str) -> None:
        self.path = path
        self.folder = tempfile.mkdtemp(prefix="dockit-ocel-")
        self.events = open(os.path.join(self.folder, "events.jsonl"), "w", encoding="utf-8")  # noqa: SIM115
        self.db = sqlite3.connect(os.path.join(self.folder, "objects.db"))
        self.db.executescript(
            """
            PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-2000; PRAGMA temp_store=FILE;
            CREATE TABLE objects (rank INTEGER PRIMARY KEY, id TEXT UNIQUE, type TEXT);
            CREATE TABLE attributes (rank INTEGER PRIMARY KEY, id TEXT, name TEXT, time TEXT, value TEXT);
            CREATE TABLE relations (id TEXT, target TEXT, qualifier TEXT, UNIQUE (id, target, qualifier));
            """
        )
        self.count = 0
        self.event_types: dict[str, dict[str, str]] = {}
        self.object_types: dict[str, dict[str, str]] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()

    # -- input -------------------------------------------------------------------------------------
    def event(self, event: LogEvent) -> None:
        self.count += 1
        types = self.event_types.setdefault(event.activity, {})
        attributes = []
        for name, value in event.attributes.items():
            if value is None:
                continue
            types.setdefault(name, _type_name(value))
            attributes.append({"name": name, "value": _value(value)})
        record = {
            "id": f"e{self.count}",
            "type": event.activity,
            "time": event.time,
            "attributes": attributes,
            "relationships": [
                {"objectId": ref.object_id, "qualifier": ref.qualifier} for ref in event.objects
            ],
        }
        if self.count > 1:
            self.events.write(",\n")
        self.events.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))

    def declare(
        self,
        object_id: str,
        object_type: str,
        time: str,
        attributes: dict[str, AttrValue],
        relations: list[tuple[str, str]] | None = None,
    ) -> None:
        recent = self._recent
        if object_id in recent:
            recent.move_to_end(object_id)
            return
        recent[object_id] = None
        if len(recent) > RECENT:
            recent.popitem(last=False)
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO objects (id, type) VALUES (?, ?)", (object_id, object_type)
        )
        types = self.object_types.setdefault(object_type, {})
        if cursor.rowcount != 1:
            return
        for name, value in attributes.items():
            if value is not None:
                types.setdefault(name, _type_name(value))
                self.db.execute(
                    "INSERT INTO attributes (id, name, time, value) VALUES (?, ?, ?, ?)",
                    (object_id, name, "1970-01-01T00:00:00+00:00", json.dumps(_value(value))),
                )
        for target, qualifier in relations or ():
            self.db.execute(
                "INSERT OR IGNORE INTO relations VALUES (?, ?, ?)", (object_id, target, qualifier)
            )

    def update(self, object_id: str, object_type: str, time: str, name: str, value: AttrValue) -> None:
        if value is None:
            return
        self.declare(object_id, object_type, time, {})
        self.object_types.setdefault(object_type, {}).setdefault(name, _type_name(value))
        self.db.execute(
            "INSERT INTO attributes (id, name, time, value) VALUES (?, ?, ?, ?)",
            (object_id, name, time, json.dumps(_value(value))),
        )

    # -- output ------------------------------------------------------------------------------------
    def commit(self) -> str:
        self.events.close()
        out = AtomicStream(self.path, "w", encoding="utf-8")
        try:
            stream = out.stream
            stream.write('{"objectTypes":')
            stream.write(json.dumps(_types(self.object_types)))
            stream.write(',\n"eventTypes":')
            stream.write(json.dumps(_types(self.event_types)))
            stream.write(',\n"objects":[\n')
            self._write_objects(stream)
            stream.write('],\n"events":[\n')
            with open(self.events.name, encoding="utf-8") as events:
                shutil.copyfileobj(events, stream)
            stream.write("\n]}\n")
        except BaseException:
            out.discard()
            self._cleanup()
            raise
        out.commit()
        self._cleanup()
        return self.path

    def discard(self) -> None:
        self.events.close()
        self._cleanup()

    def _cleanup(self) -> None:
        self.db.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write_objects(self, stream) -> None:  # type: ignore[no-untyped-def]
        """Objects in the order they were first met, each with its attributes (the first value, then
        each change with its time) and its relations to other objects."""
        attributes = self.db.execute(
            "SELECT o.rank, a.name, a.time, a.value FROM attributes a JOIN objects o ON o.id = a.id "
            "ORDER BY o.rank, a.rank"
        )
        relations = self.db.execute(
            "SELECT o.rank, r.target, r.qualifier FROM relations r JOIN objects o ON o.id = r.id ORDER BY o.rank"
        )
        next_attribute = next(attributes, None)
        next_relation = next(relations, None)
        first = True
        for rank, object_id, object_type in self.db.execute(
            "SELECT rank, id, type FROM objects ORDER BY rank"
        ):
            own_attributes = []
            while next_attribute is not None and next_attribute[0] == rank:
                own_attributes.append(
                    {
                        "name": next_attribute[1],
                        "time": next_attribute[2],
                        "value": json.loads(next_attribute[3]),
                    }
                )
                next_attribute = next(attributes, None)
            own_relations = []
            while next_relation is not None and next_relation[0] == rank:
                own_relations.append({"objectId": next_relation[1], "qualifier": next_relation[2]})
                next_relation = next(relations, None)
            record = {"id": object_id, "type": object_type, "attributes": own_attributes,
                      "relationships": own_relations}  # fmt: skip
            if not first:
                stream.write(",\n")
            first = False
            stream.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))


def _types(types: dict[str, dict[str, str]]) -> list[dict[str, object]]:
    return [
        {"name": name, "attributes": [{"name": attr, "type": kind} for attr, kind in sorted(attrs.items())]}
        for name, attrs in sorted(types.items())
    ]
