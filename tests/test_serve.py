"""`--serve`: the run's objects over HTTP while it goes, checked against the XML summary the same run
wrote, and in a real browser (Debian's chromium driven by playwright) during a live trace that runs
processes and a query against the local MariaDB."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from lxml import etree

from tests.conftest import CAPTURES, REPO, mariadb_listening, run_dockit

URL = re.compile(r"serving the run on (http://\S+)")


class Served:
    """`dockit ... --serve 127.0.0.1:0 [--serve-after]` in the background; `url` once it listens."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dockit_core.cli", "--serve", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
        )  # fmt: skip
        assert self.process.stderr is not None
        self.stderr: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            self.stderr.append(line)
            found = URL.search(line)
            if found:
                self.url = found.group(1)
                return
            if not line and self.process.poll() is not None:
                break
        raise AssertionError("".join(self.stderr))

    def get(self, path: str) -> object:
        with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=30) as response:
            return json.loads(response.read())

    def wait_line(self, text: str, timeout: float = 60) -> None:
        assert self.process.stderr is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            self.stderr.append(line)
            if text in line:
                return
        raise AssertionError("".join(self.stderr))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        _, rest = self.process.communicate(timeout=60)
        self.stderr.append(rest)
        return self.process.returncode


def all_objects(served: Served) -> list[dict]:
    found: list[dict] = []
    while True:
        page = served.get(f"/api/objects?offset={len(found)}&limit=1000")
        found += page["objects"]  # type: ignore[index]
        if len(found) >= page["total"] or not page["objects"]:  # type: ignore[index]
            return found


def _same(xml_value: str, json_value: object) -> bool:
    if str(json_value) == xml_value or (isinstance(json_value, bool) and xml_value == str(json_value).lower()):
        return True
    try:
        return abs(float(xml_value) - float(json_value)) < 1e-9  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def canonical_xml(element: etree._Element) -> tuple:
    children = tuple(sorted((c.tag, tuple(sorted(c.attrib.items())), c.text or "") for c in element))
    return element.tag, tuple(sorted(element.attrib.items())), children


def canonical_json(document: dict, xml_like: tuple) -> bool:
    tag, attrs, children = xml_like
    if document["class"] != tag or set(document["attrs"]) != {name for name, _ in attrs}:
        return False
    if not all(_same(value, document["attrs"][name]) for name, value in attrs):
        return False
    mine = sorted(
        (c["tag"], tuple(sorted((k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (c.get("attrs") or {}).items())), c.get("text") or "")
        for c in document.get("children", ())
    )
    return len(mine) == len(children) and all(
        a[0] == b[0] and a[2] == b[2] and [k for k, _ in a[1]] == [k for k, _ in b[1]]
        and all(_same(v, w) for (_, v), (_, w) in zip(a[1], b[1], strict=True))
        for a, b in zip(children, mine, strict=True)
    )


def test_the_api_gives_the_xml_summarys_objects_and_the_events_rebuild_them(tmp_path: Path) -> None:
    served = Served("-i", str(CAPTURES / "mysql_cli.strace.25968.log"), "-l", str(tmp_path / "m"), "--serve-after")
    try:
        served.wait_line("still serving")
        api = all_objects(served)
        summary = served.get("/api/summary")
        # the event stream from 0 rebuilds the same objects
        rebuilt: dict[str, dict] = {}
        with urllib.request.urlopen(served.url + "api/events?from=0", timeout=30) as stream:
            kind, data = None, None
            for raw in stream:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif not line and kind:
                    if kind == "end":
                        break
                    document = json.loads(data or "{}")
                    if kind == "delete":
                        rebuilt.pop(document["key"], None)
                    else:
                        rebuilt[f"{document['class']}/{document['id']}"] = document
                    kind = data = None
        one = served.get("/api/objects/CIM_Process/25968")
    finally:
        assert served.stop() == 0, "".join(served.stderr)
    xml = etree.parse(str(tmp_path / "m.xml")).getroot()
    elements = [canonical_xml(e) for e in xml]
    assert len(api) == len(elements), (Counter(d["class"] for d in api), Counter(e[0] for e in elements))
    unmatched = list(api)
    for element in elements:
        match = next((d for d in unmatched if canonical_json(d, element)), None)
        assert match is not None, f"no JSON object for {element}"
        unmatched.remove(match)
    assert summary["finished"] is True and summary["classes"]["Dockit_SqlQuery"] == 8  # type: ignore[index]
    assert sorted(rebuilt) == sorted(f"{d['class']}/{d['id']}" for d in api)
    assert all(rebuilt[f"{d['class']}/{d['id']}"] == d for d in api)
    links = one["links"]  # type: ignore[index]
    assert len(links["queries"]) == 8 and len(links["sessions"]) == 1 and links["sessions"][0]["attrs"]["User"] == "dockit_capture_user"
    assert not list(Path("/tmp").glob(f"dockit-serve-{served.process.pid}-*")), "the scratch store is removed"


def _read_stream(url: str, headers: dict[str, str] | None = None) -> list[tuple[int, str, dict]]:
    """(id, kind, document) of every event until `end`."""
    events = []
    request = urllib.request.Request(url + "api/events?from=0", headers=headers or {})
    with urllib.request.urlopen(request, timeout=60) as stream:
        seq, kind = 0, None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("id: "):
                seq = int(line[4:])
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind:
                if kind == "end":
                    return events
                events.append((seq, kind, json.loads(line[6:])))
                kind = None
    return events


def test_clients_reading_the_stream_together_each_get_all_of_it(tmp_path: Path) -> None:
    """Ten pages opened on one run read the same blocks of events: a whole block's text is kept for the
    next client. Each client must still get every event once, in order, and a client resuming in the
    middle of a block (Last-Event-ID) gets exactly what follows."""
    log = tmp_path / "files.log"
    with log.open("w") as out:  # 1,800 files: events enough for several whole blocks of 500
        for i in range(1800):
            out.write(f'100 1700000000.{2 * i:06d} openat(AT_FDCWD, "/srv/data/f{i}", O_RDONLY) = 3\n')
            out.write(f"100 1700000000.{2 * i + 1:06d} close(3) = 0\n")
        out.write("100 1700000001.000000 +++ exited with 0 +++\n")
    served = Served("-i", str(log), "-l", str(tmp_path / "f"), "--serve-after")
    try:
        served.wait_line("still serving")
        readers: list[list] = [[] for _ in range(4)]
        threads = [threading.Thread(target=lambda r=r: r.extend(_read_stream(served.url))) for r in readers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        resumed = _read_stream(served.url, {"Last-Event-ID": "750"})
        api = all_objects(served)
    finally:
        assert served.stop() == 0, "".join(served.stderr)
    last = readers[0][-1][0]
    assert last > 1800
    for events in readers:
        assert [seq for seq, _, _ in events] == list(range(1, last + 1))
        rebuilt = {f"{d['class']}/{d['id']}": d for _, kind, d in events if kind != "delete"}
        assert sorted(rebuilt) == sorted(f"{d['class']}/{d['id']}" for d in api)
        assert all(rebuilt[f"{d['class']}/{d['id']}"] == d for d in api)
    assert [seq for seq, _, _ in resumed] == list(range(751, last + 1))


def test_filters_are_the_summary_filters(tmp_path: Path) -> None:
    served = Served("-i", str(CAPTURES / "mysql_cli.strace.25968.log"), "-l", str(tmp_path / "m"), "--serve-after")
    try:
        served.wait_line("still serving")
        errors = served.get("/api/objects?class=Dockit_SqlQuery&Status=error")
        libraries = served.get("/api/objects?s=" + quote('CIM_DataFile:Category=["Shared libraries"]'))
        bad = urllib.request.Request(served.url + "api/objects?s=not%20a%20class")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=10)
    finally:
        served.stop()
    assert [q["children"][0]["text"] for q in errors["objects"]] == ["SELECT * FROM no_such_table"]  # type: ignore[index]
    assert libraries["total"] == 12 and all(f["attrs"]["Category"] == "Shared libraries" for f in libraries["objects"])  # type: ignore[index]
    assert refused.value.code == 400


def _server_processes(parent: int) -> list[int]:
    """The pids of `--serve`'s server processes started by dockit `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"dockit_core.cli.serve_process" in command and str(parent).encode() in command:
            found.append(int(entry.name))
    return found


def test_the_server_is_a_process_of_its_own_that_ends_with_dockit(tmp_path: Path) -> None:
    """Clients cost the pipeline neither its thread nor its interpreter's lock: the server runs in a
    process of its own, which ends when dockit ends, and with it when dockit is killed outright."""
    log = str(CAPTURES / "mysql_cli.strace.25968.log")
    for ending in (signal.SIGINT, signal.SIGKILL):
        served = Served("-i", log, "-l", str(tmp_path / f"m{int(ending)}"), "--serve-after")
        served.wait_line("still serving")
        servers = _server_processes(served.process.pid)
        assert len(servers) == 1 and servers[0] != served.process.pid
        assert served.get("/api/summary")["finished"] is True  # type: ignore[index]
        served.process.send_signal(ending)
        served.process.communicate(timeout=30)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{servers[0]}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        status = Path(f"/proc/{servers[0]}/stat").read_text().split()[2] if Path(f"/proc/{servers[0]}").exists() else None
        assert status in (None, "Z"), f"the server process outlived dockit ({ending!r}): state {status}"
        with pytest.raises(OSError):
            urllib.request.urlopen(served.url + "api/summary", timeout=5)
        assert not list(Path("/tmp").glob(f"dockit-serve-{served.process.pid}-*")), "the scratch store is removed"


def test_serve_usage_errors_are_one_line(tmp_path: Path) -> None:
    busy = socket.create_server(("127.0.0.1", 0))
    try:
        port = busy.getsockname()[1]
        for args, message in (
            (["--serve", f"127.0.0.1:{port}"], "cannot listen there"),
            (["--serve", "nowhere:http"], "expected [HOST:]PORT"),
            (["--serve-after"], "give --serve [HOST:]PORT with it"),
        ):
            result = run_dockit(*args, "-i", str(CAPTURES / "pipeline.strace.24957.log"), "-l", str(tmp_path / "x"))
            assert result.returncode == 2 and message in result.stderr, result.stderr
            assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    finally:
        busy.close()


# -- in a browser -------------------------------------------------------------------------------------
def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="needs Debian's chromium")
@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
@pytest.mark.skipif(not mariadb_listening(), reason="needs the MariaDB server on 127.0.0.1:3306")
def test_the_page_shows_processes_and_queries_as_they_happen(tmp_path: Path) -> None:
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    probe = f"select {os.getpid()} as dockit_serve_probe"
    script = f"sleep 4; mariadb -h 127.0.0.1 -u root -N -e '{probe}'; sleep 4"
    with sync_playwright() as playwright:  # the browser first: it may take seconds to start
        browser = playwright.chromium.launch(
            executable_path=_chromium(),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],  # fmt: skip
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        served = Served("-l", str(tmp_path / "live"), "sh", "-c", script, cwd=tmp_path)
        try:
            page.goto(served.url)
            page.wait_for_selector("#status:text('live')", timeout=20_000)
            page.locator("li span.clickable", has_text=re.compile(r"^\d+ sh ")).first.wait_for(timeout=20_000)
            # the shell is there; the query comes in a few seconds: watch the queries as a user would
            page.click("nav button[data-tab=queries]")
            row = page.locator(f"#query-rows tr:has-text('{probe}')").first
            row.wait_for(timeout=20_000)
            shown_at = int(row.get_attribute("data-shown-at")) / 1000
            arrived_at = int(row.get_attribute("data-arrived-at") or 0) / 1000
            row.click()
            page.wait_for_selector("#details [data-link=sessions] li", timeout=10_000)
            details = page.inner_text("#details")
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            # the client's own entry ("<pid> mariadb ..."), not the shell whose command line names it
            page.click("nav button[data-tab=processes]")
            mariadb = page.locator("li span.clickable", has_text=re.compile(r"^\d+ mariadb ")).first
            mariadb.wait_for(timeout=20_000)
            process_arrived_at = int(mariadb.get_attribute("data-arrived-at")) / 1000  # in the page's state
            pid = mariadb.inner_text().split()[0]
            for _ in range(5):  # the tree may be redrawn under the click as the process ends: click again
                mariadb.click()
                try:
                    page.wait_for_selector(f"#details-title:has-text('{pid}')", timeout=2_000)
                    break
                except Exception:  # noqa: BLE001 - playwright's timeout: try once more
                    continue
            page.wait_for_selector("#details [data-link=queries] li", timeout=10_000)
            process_details = page.inner_text("#details")
            browser.close()
        finally:
            status = served.process.wait(timeout=60)  # the run ends with its program
            served.stop()
    assert status == 0, "".join(served.stderr)
    xml = etree.parse(str(next(tmp_path.glob("live.strace.*.xml")))).getroot()
    query = next(q for q in xml.iter("Dockit_SqlQuery") if q.findtext("Text") == probe)
    started = datetime.fromisoformat(query.get("Start")).timestamp()
    ended = started + float(query.get("Duration"))
    assert shown_at - ended < 1.0, f"shown {shown_at - ended:.3f} s after the query (arrived {arrived_at - ended:.3f})"
    client = next(p for p in xml.iter("CIM_Process") if p.findtext("ExecutablePath") == "/usr/bin/mariadb")
    assert process_arrived_at - datetime.fromisoformat(client.findtext("CreationDate")).timestamp() < 1.0
    assert "mysql" in details and "root" in details and f"process {client.get('Handle')}" in details
    assert probe in process_details  # the process leads to its query
    assert (tmp_path / "page.png").stat().st_size > 10_000
