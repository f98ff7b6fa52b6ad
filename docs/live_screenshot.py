"""Make docs/live-view.png, the README's picture of `--serve`: a real live trace (a shell that runs a few
programs and queries the local MariaDB), its page in Debian's chromium, driven by playwright.

    python docs/live_screenshot.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = (
    "sleep 2; ls /usr/share > /dev/null; "
    "mariadb -h 127.0.0.1 -u root -N -e 'select 6 * 7; select user, host from mysql.user limit 3; "
    "select * from no_such_schema.t'; "
    "sleep 1; id -u > /dev/null; sleep 3"
)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="dockit-shot-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with sync_playwright() as playwright:  # the browser first: it may take seconds to start
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])  # fmt: skip
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        dockit = subprocess.Popen(
            [sys.executable, "-m", "dockit_core.cli", "--serve", "127.0.0.1:0", "-l", str(work / "demo"),
             "sh", "-c", WORKLOAD],  # fmt: skip
            stderr=subprocess.PIPE, text=True, env=env, cwd=work,
        )  # fmt: skip
        assert dockit.stderr is not None
        url = None
        while url is None:
            found = re.search(r"serving the run on (\S+)", dockit.stderr.readline())
            url = found.group(1) if found else None
        page.goto(url)
        page.click("nav button[data-tab=queries]")
        row = page.locator("#query-rows tr:has-text('select 6 * 7')").first
        row.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        row.click()
        page.wait_for_selector("#details [data-link=sessions] li", timeout=10_000)
        page.screenshot(path=str(ROOT / "docs" / "live-view.png"))
        browser.close()
    dockit.wait(timeout=60)
    print(ROOT / "docs" / "live-view.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
