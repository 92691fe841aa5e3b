"""Start `streamlit run app.py` on 127.0.0.1 with tiny models and a throwaway cache (browser tests, load bench), in
the environment `make run` gives the server (the Makefile's SERVE_ENV: no garbage collection after every run), so
the tests see the runs users get."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_run_env() -> dict[str, str]:
    """The environment `make run` gives the server: the Makefile's SERVE_ENV."""
    makefile = (ROOT / "Makefile").read_text()
    line = re.search(r"^SERVE_ENV \?= (.*)$", makefile, re.MULTILINE)
    return dict(item.split("=", 1) for item in line.group(1).split()) if line else {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(startup_s: float = 90, log: list[str] | None = None, **env: str) -> Iterator[str]:
    """Yield the URL of a fresh server; `env` adds environment variables (over `make run`'s and this process's).
    Stops it on exit.

    The server's output (stdout and stderr) is read line by line as it comes into `log` when given.
    """
    port = free_port()
    cache = tempfile.mkdtemp(prefix="vfm-lens-server-cache-")
    environ = {
        **make_run_env(),
        **os.environ,
        "VFM_LENS_PROFILE": "tiny",
        "VFM_LENS_OFFLINE": "1",
        "VFM_LENS_CACHE": cache,
        **env,
    }
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    proc = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    lines = log if log is not None else []
    reader = threading.Thread(target=_read_lines, args=(proc, lines), daemon=True)
    reader.start()  # also keeps the pipe drained, so a chatty server never blocks on a full pipe
    try:
        _wait_healthy(url, proc, startup_s, lines)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        shutil.rmtree(cache, ignore_errors=True)


def _read_lines(proc: subprocess.Popen, lines: list[str]) -> None:
    for raw in proc.stdout:
        lines.append(raw.decode(errors="replace").rstrip("\n"))


_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL|Traceback)\b|\w+(Warning|Error|Exception):")


def log_problems(lines: list[str]) -> list[str]:
    """The lines of a server log that report a warning (logged or Python's), an error or a traceback."""
    return [line for line in lines if _PROBLEM.search(line)]


def _wait_healthy(url: str, proc: subprocess.Popen, startup_s: float, lines: list[str]) -> None:
    deadline = time.monotonic() + startup_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    proc.kill()
    proc.wait()
    time.sleep(0.5)  # the reader takes the last lines
    output = "\n".join(lines)[-3000:]
    raise RuntimeError(f"streamlit did not start:\n{output}")


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
