"""End-to-end fixtures: a real server process on a free loopback port with a fresh SQLite file,
and a headless Chromium driven by Playwright.

The server binary and the built client come from the environment (set by scripts/test.sh):
BACKEND_BIN (default target/debug/backend) and STATIC_DIR (default dist/).
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BACKEND_BIN = os.environ.get("BACKEND_BIN", str(ROOT / "target" / "debug" / "backend"))
STATIC_DIR = os.environ.get("STATIC_DIR", str(ROOT / "dist"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A backend process. `restart()` keeps the database file. `args` are more command-line
    options (for example `["--max-upload-bytes", "1000"]`)."""

    def __init__(self, tmp: pathlib.Path, args=()):
        self.args = list(args)
        self.port = free_port()
        self.db = tmp / "chat.db"
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.log = open(tmp / "server.log", "ab")
        self.proc = None
        self.start()

    def start(self):
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        self.proc = subprocess.Popen(
            [BACKEND_BIN, "--bind", f"127.0.0.1:{self.port}", "--database", str(self.db),
             "--static-dir", STATIC_DIR,
             # Every test user registers from 127.0.0.1 within seconds of the others.
             "--auth-per-minute", "600", *self.args],
            stdout=self.log, stderr=self.log, env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start listening in 30 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self):
        self.stop()
        self.start()


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path)
    yield srv
    srv.stop()
    srv.log.close()


def http_json(method: str, url: str, body=None, token: str | None = None):
    """Returns (status, parsed JSON body or None)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            raw = res.read()
            return res.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw else None)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        yield b
        b.close()


WAIT = 15_000  # ms: generous, the machine is shared


def online(page):
    """Waits until the page's connection badge says it is connected."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("conn-badge")).to_have_attribute("data-state", "online", timeout=WAIT)


def say(page, text):
    """Types `text` into the page's composer and sends it."""
    composer = page.get_by_test_id("composer")
    composer.fill(text)
    composer.press("Enter")


AXE = ROOT / "tests" / "e2e" / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page, *, impacts=("serious", "critical")):
    """Runs axe-core (WCAG 2.0-2.2 A and AA rules) on the page as it is now and returns the
    violations of the given impacts as readable lines (rule, impact, the first few targets).

    The page's context must be created with `bypass_csp=True`: the app's Content-Security-Policy
    rightly refuses the injected script otherwise."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {
                runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                                 'wcag22aa', 'best-practice']},
                resultTypes: ['violations'],
            });
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.slice(0, 4).map(n => n.target.join(' ') + ' :: ' +
                    (n.failureSummary || '').replace(/\\s+/g, ' ').slice(0, 160))}));
        }"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> {v['targets']}"
        for v in result
        if v["impact"] in impacts
    ]
