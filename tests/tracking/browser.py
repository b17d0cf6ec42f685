"""Test helpers for looking at the MLflow UI: a real ``mlflow server`` on a free loopback port and Debian's
headless Chromium rendering its React pages (``--dump-dom`` after the page's scripts ran, ``--screenshot``).

Every process is started in its own session and its whole process group is killed afterwards, also on a
timeout, so neither the server's workers nor Chromium's renderer and GPU processes outlive a test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["chromium", "dump_dom", "free_port", "mlflow_server", "page_text", "screenshot", "table_rows"]

_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-breakpad",
    "--hide-scrollbars",
    "--mute-audio",
)


def chromium() -> str | None:
    """Path of the Chromium executable, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own process group; the group is killed when it returns, exits or times out."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        _kill_group(proc)  # Chromium's helper processes, also after a normal exit
        proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _chromium(url: str, *flags: str, window: str, budget_ms: int, timeout: float) -> str:
    exe = chromium()
    assert exe, "chromium not found"
    with tempfile.TemporaryDirectory(prefix="hmil-chromium-") as profile:
        cmd = [
            exe,
            *_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={window}",
            f"--virtual-time-budget={budget_ms}",
            *flags,
            url,
        ]
        done = _run(cmd, timeout)
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


def dump_dom(url: str, *, window: str = "1600,1000", budget_ms: int = 15000, timeout: float = 60) -> str:
    """The page's DOM once its scripts ran (Chromium's virtual time lets the app's requests finish)."""
    return _chromium(url, "--dump-dom", window=window, budget_ms=budget_ms, timeout=timeout)


def screenshot(url: str, path: Path, *, window: str = "1600,1400", budget_ms: int = 15000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _chromium(url, f"--screenshot={path}", window=window, budget_ms=budget_ms, timeout=60)
    assert path.stat().st_size > 0


class _Text(HTMLParser):
    """Visible text (outside script/style) and the rows of every table, as lists of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.rows: list[list[str]] = []
        self._skip = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._skip:
            return
        self.parts.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _parse(dom: str) -> _Text:
    parser = _Text()
    parser.feed(dom)
    parser.close()
    return parser


def page_text(dom: str) -> str:
    """The visible text of a DOM dump, whitespace collapsed."""
    return " ".join(" ".join(_parse(dom).parts).split())


def table_rows(dom: str) -> list[list[str]]:
    """Every ``<tr>`` of the DOM as its cell texts (``th`` and ``td``)."""
    return [row for row in _parse(dom).rows if row]


@contextmanager
def mlflow_server(
    backend_uri: str, log: Path, *, artifacts: Path | None = None, timeout: float = 90
) -> Iterator[str]:
    """``mlflow server`` on ``backend_uri`` at a free loopback port; yields its base URL once /health answers.
    With ``artifacts`` the server stores and serves (proxies) the runs' artifacts there, as a team server does."""
    port = free_port()
    exe = Path(sys.executable).with_name("mlflow")
    cmd = [str(exe), "server", "--backend-store-uri", backend_uri, "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", "1"]
    if artifacts is not None:
        cmd += ["--artifacts-destination", str(artifacts), "--serve-artifacts"]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job runner and huey workers
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, f"mlflow server exited {proc.returncode}: {log.read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (
                f"mlflow server not up in {timeout} s: {log.read_text()[-2000:]}"
            )
            time.sleep(0.25)
        yield base
    finally:
        _kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        _kill_group(proc)  # workers that ignored SIGTERM
        proc.wait()
