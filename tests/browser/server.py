"""Start `streamlit run app.py` on 127.0.0.1 with tiny models and a throwaway cache (browser tests, load bench)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(startup_s: float = 90, **env: str) -> Iterator[str]:
    """Yield the URL of a fresh server; `env` adds environment variables. Stops it on exit."""
    port = free_port()
    cache = tempfile.mkdtemp(prefix="vfm-lens-server-cache-")
    environ = {
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
    try:
        _wait_healthy(url, proc, startup_s)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(cache, ignore_errors=True)


def _wait_healthy(url: str, proc: subprocess.Popen, startup_s: float) -> None:
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
    output = proc.stdout.read().decode(errors="replace")[-3000:] if proc.stdout else ""
    raise RuntimeError(f"streamlit did not start:\n{output}")


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
