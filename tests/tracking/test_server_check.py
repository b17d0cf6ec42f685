"""An http(s) tracking URI where no MLflow server answers fails at once with one `error:` line and exit 2,
instead of MLflow's client retrying every request for minutes (MLFLOW_HTTP_REQUEST_MAX_RETRIES)."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from benchmark.cli.main import main
from benchmark.core.errors import BenchmarkError
from benchmark.tracking.store import configure
from tests.tracking.browser import free_port

pytestmark = pytest.mark.usefixtures("keep_tracking_uri")


@pytest.fixture
def answering():
    """A loopback HTTP server that answers every request with ``status``; yields (set_status, url)."""
    state = {"status": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(state["status"])
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield lambda status: state.update(status=status), f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_configure_refuses_a_port_nothing_listens_on():
    uri = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(BenchmarkError, match=f"--tracking-uri {uri}: the MLflow server does not answer"):
        configure(uri)
    assert time.monotonic() - start < 6


def test_the_environment_variable_is_named_when_it_gave_the_uri(monkeypatch):
    uri = f"http://127.0.0.1:{free_port()}/"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(BenchmarkError, match="MLFLOW_TRACKING_URI .*Connection refused"):
        configure(None)


@pytest.mark.parametrize("status", [200, 401, 404])
def test_any_http_answer_passes(answering, status):
    """An auth app or a proxy may refuse /health: the server is there, MLflow's client says the rest."""
    set_status, url = answering
    set_status(status)
    assert configure(f"{url}/{status}") == f"{url}/{status}"  # a path of its own: configure checks once


@pytest.mark.parametrize("command", ["compare", "run"])
def test_cli_exits_2_with_one_error_line(command, tmp_path, capsys):
    uri = f"http://127.0.0.1:{free_port()}"
    args = {
        "compare": ["compare", "--experiment", "x", "--format", "json", "--bootstrap", "0"],
        "run": ["run", "--dataset", "digits-panda", "--models", "meanpool", "--folds", "2", "--epochs", "1"]
        + ["--threads", "1", "--no-compare", "--cache-dir", str(tmp_path), "--splits-dir", str(tmp_path)],
    }[command]
    start = time.monotonic()
    assert main([*args, "--tracking-uri", uri]) == 2
    assert time.monotonic() - start < 10
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: --tracking-uri {uri}: the MLflow server does not"
    )
    assert "Connection refused" in errors[0] and "mlflow server` (docs/scaling.md)" in errors[0]
