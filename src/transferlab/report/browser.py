"""Open a report in headless Chromium over the DevTools protocol: what it logged, fetched, showed.

Used by the browser test and by `transferlab report --screenshot`. It needs Debian's
`chromium` (or any Chromium/Chrome; set TRANSFERLAB_CHROMIUM to its path) and websocket-client.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferlab.errors import RunError, UserError

log = logging.getLogger(__name__)

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)

# What the page reports about itself once loaded: figures that decoded, tables with rows.
PAGE_FACTS_JS = """(() => {
  const images = Array.from(document.querySelectorAll("figure img"));
  const tables = Array.from(document.querySelectorAll("table.data"));
  return {
    title: document.title,
    sections: Array.from(document.querySelectorAll("main > section")).map(s => s.id),
    toc_links: document.querySelectorAll("nav.toc a").length,
    figures: images.length,
    figures_decoded: images.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0).length,
    figures_with_caption: Array.from(document.querySelectorAll("figure")).filter(
      f => (f.querySelector("figcaption")?.textContent || "").trim().length > 40).length,
    tables: tables.length,
    table_rows: tables.map(t => t.tBodies[0] ? t.tBodies[0].rows.length : 0),
    scripts: document.scripts.length,
    overflowing: Array.from(document.querySelectorAll(".table-wrap, figure")).filter(
      e => e.scrollWidth > e.clientWidth + 1).map(e => e.id),
    text: document.body.innerText,
    width: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight,
  };
})()"""


@dataclass
class PageCheck:
    """What a page did in the browser: console errors, requests beyond itself, dialogs, DOM facts."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    console_warnings: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        """Return everything that should not happen on a self-contained page."""
        return [
            *(f"console error: {text}" for text in self.console_errors),
            *(f"request: {url}" for url in self.requests),
            *(f"dialog: {text}" for text in self.dialogs),
        ]


def find_chromium() -> str | None:
    """Return the Chromium executable to use, or None when none is installed."""
    configured = os.environ.get("TRANSFERLAB_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else shutil.which(configured)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """Return the Chromium executable, or raise UserError saying how to get one and the client."""
    executable = find_chromium()
    if executable is None:
        raise UserError(
            "chromium",
            "no Chromium found on PATH",
            "install it (Debian: apt-get install chromium) or set TRANSFERLAB_CHROMIUM",
        )
    try:
        import websocket  # noqa: F401
    except ImportError as error:
        raise UserError(
            "websocket-client", "not installed", "pip install websocket-client"
        ) from error
    return executable


class _DevTools:
    """A minimal DevTools protocol client on one browser websocket with one attached page."""

    def __init__(self, ws_url: str, timeout: float) -> None:
        import websocket

        # Chromium refuses websocket clients that send an Origin it was not told to allow.
        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self.timeout = timeout
        self.next_id = 0
        self.session: str | None = None
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, params: dict[str, Any] | None = None, page: bool = True) -> Any:
        """Send one command and return its result, keeping the events that arrive meanwhile."""
        self.next_id += 1
        sent = self.next_id
        self._send(method, params or {}, page)
        while True:
            reply = self._receive()
            if reply.get("id") == sent:
                if "error" in reply:
                    raise RunError(f"DevTools {method} failed: {reply['error'].get('message')}")
                return reply.get("result", {})

    def _send(self, method: str, params: dict[str, Any], page: bool) -> None:
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if page and self.session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))

    def _receive(self) -> dict[str, Any]:
        reply = json.loads(self.ws.recv())
        if "method" in reply:
            self.events.append(reply)
            if reply["method"] == "Page.javascriptDialogOpening":
                # Dismiss at once (an open dialog blocks the page); its reply is ignored.
                self.next_id += 1
                self._send("Page.handleJavaScriptDialog", {"accept": True}, page=True)
        return reply

    def wait_for(self, method: str, timeout: float, **match: Any) -> None:
        """Read messages until an event named `method` whose params include `match` arrives."""

        def arrived() -> bool:
            return any(
                event["method"] == method
                and all(event.get("params", {}).get(k) == v for k, v in match.items())
                for event in self.events
            )

        deadline = time.monotonic() + timeout
        while not arrived():
            if time.monotonic() > deadline:
                raise RunError(f"the page did not finish loading within {timeout:.0f} s")
            self._receive()

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within `seconds` (late console messages)."""
        import websocket

        deadline = time.monotonic() + seconds
        self.ws.settimeout(0.1)
        while time.monotonic() < deadline:
            try:
                self._receive()
            except websocket.WebSocketTimeoutException:
                continue
        self.ws.settimeout(self.timeout)

    def close(self) -> None:
        self.ws.close()


def _start_chromium(executable: str, profile: Path, timeout: float) -> tuple[subprocess.Popen, str]:
    """Start Chromium with a fresh profile; return the process and its browser websocket URL."""
    log_file = (profile / "chromium.log").open("wb")
    process = subprocess.Popen(
        [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_file.exists():
            lines = port_file.read_text().split()
            if len(lines) >= 2:
                return process, f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    tail = (profile / "chromium.log").read_text(errors="replace")[-600:]
    raise RunError(f"{executable} did not start its DevTools endpoint: {tail}")


def check_page(
    html_file: Path,
    screenshot: Path | None = None,
    pdf: Path | None = None,
    viewport: tuple[int, int] = (1280, 800),
    timeout: float = 60.0,
    evaluate: dict[str, str] | None = None,
    media: str = "screen",
) -> PageCheck:
    """Load a local HTML file in headless Chromium and return what it logged, fetched and showed.

    With `screenshot`, writes a full-page PNG; with `pdf`, prints the page as the browser would;
    `evaluate` maps names to JavaScript expressions run in order after the load (results in
    `values`); `media="print"` lays the page out as for printing.
    """
    executable = require_chromium()
    url = Path(html_file).resolve().as_uri()
    check = PageCheck(url=url)
    with tempfile.TemporaryDirectory(prefix="transferlab-chromium-") as profile:
        process, ws_url = _start_chromium(executable, Path(profile), timeout)
        devtools = None
        try:
            devtools = _DevTools(ws_url, timeout)
            target = devtools.call("Target.createTarget", {"url": "about:blank"}, page=False)
            attached = devtools.call(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
            )
            devtools.session = attached["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                devtools.call(f"{domain}.enable")
            width, height = viewport
            devtools.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            devtools.call("Emulation.setEmulatedMedia", {"media": media})
            devtools.call("Page.setLifecycleEventsEnabled", {"enabled": True})
            devtools.events.clear()
            navigation = devtools.call("Page.navigate", {"url": url})
            if navigation.get("errorText"):
                raise RunError(f"Chromium could not open {url}: {navigation['errorText']}")
            devtools.wait_for(
                "Page.lifecycleEvent", timeout, name="load", loaderId=navigation.get("loaderId")
            )
            devtools.drain(0.5)
            result = devtools.call(
                "Runtime.evaluate", {"expression": PAGE_FACTS_JS, "returnByValue": True}
            )
            check.facts = result.get("result", {}).get("value", {})
            for name, expression in (evaluate or {}).items():
                value = devtools.call(
                    "Runtime.evaluate", {"expression": expression, "returnByValue": True}
                )
                check.values[name] = value.get("result", {}).get("value")
            if screenshot is not None:
                _capture(devtools, Path(screenshot))
            if pdf is not None:
                printed = devtools.call("Page.printToPDF", {"printBackground": True})
                Path(pdf).write_bytes(base64.b64decode(printed["data"]))
            _collect(devtools.events, check)
        finally:
            if devtools is not None:
                try:
                    devtools.call("Browser.close", page=False)
                except Exception:  # the browser may already be gone; it is killed below
                    log.debug("Browser.close failed", exc_info=True)
                devtools.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return check


def _capture(devtools: _DevTools, path: Path) -> None:
    metrics = devtools.call("Page.getLayoutMetrics")
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = devtools.call(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True, "clip": clip},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


def _collect(events: list[dict[str, Any]], check: PageCheck) -> None:
    """Sort the page's events into console errors, warnings, outside requests and dialogs."""
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(
                str(arg.get("value", arg.get("description", ""))) for arg in params["args"]
            )
            if params["type"] in ("error", "assert"):
                check.console_errors.append(text)
            elif params["type"] == "warning":
                check.console_warnings.append(text)
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            check.console_errors.append(
                details.get("exception", {}).get("description") or details.get("text", "")
            )
        elif method == "Log.entryAdded":
            entry = params["entry"]
            if entry["level"] == "error":
                check.console_errors.append(f"{entry.get('source')}: {entry.get('text')}")
            elif entry["level"] == "warning":
                check.console_warnings.append(f"{entry.get('source')}: {entry.get('text')}")
        elif method == "Network.requestWillBeSent":
            request_url = params["request"]["url"]
            if request_url != check.url and not request_url.startswith("data:"):
                check.requests.append(request_url)
        elif method == "Page.javascriptDialogOpening":
            check.dialogs.append(f"{params.get('type')}: {params.get('message')}")


def screenshot_report(html_file: Path, png: Path) -> Path:
    """Render a report in headless Chromium, save a full-page PNG and return its path.

    Raises RunError when the page logs errors, fetches anything or opens a dialog.
    """
    check = check_page(Path(html_file), screenshot=Path(png))
    if check.problems:
        raise RunError(f"{html_file} misbehaved in Chromium: {'; '.join(check.problems[:3])}")
    return Path(png)
