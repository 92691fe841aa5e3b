"""The README's stored-dataset commands, run as written (tiny model, a few images) in a fresh data root: the embed
CLI prints its progress and summary and none of Ray's internals, the Stored datasets page finds the dataset and
opens it, and the export command copies every row."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

from tests.scale.conftest import write_images

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "stored.py")
N = 6
TINY = "dinov2_tiny"


def readme_command(subcommand: str) -> list[str]:
    """The arguments after `python -m core.batch` of the README's first local `core.batch <subcommand>` line."""
    for line in (ROOT / "README.md").read_text().splitlines():
        if f"-m core.batch {subcommand} data/" in line:
            words = shlex.split(line.split("#")[0])
            return words[words.index("core.batch") + 1 :]
    raise AssertionError(f"README.md shows no local `core.batch {subcommand}` command")


def with_tiny_model(args: list[str]) -> list[str]:
    args = list(args)
    if "--model" in args:
        args[args.index("--model") + 1] = TINY
    return args + ["--num-cpus", "2", "--actors", "1"]


@pytest.mark.slow
def test_the_readme_commands_embed_quietly_then_the_page_lists_and_opens_the_dataset(tmp_path, monkeypatch):
    embed = readme_command("embed")  # embed data/photos data/photos.lance --model ...
    source, out = (tmp_path / a for a in embed[1:3])
    write_images(source, N)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VFM_LENS_DATA_ROOTS": str(tmp_path / "data")}
    run = subprocess.run(
        [sys.executable, "-m", "core.batch", *with_tiny_model(embed)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
    )
    printed = run.stdout + run.stderr
    assert run.returncode == 0, printed
    assert f"{N} images listed, 0 already stored, {N} embedded, 0 skipped in" in run.stdout
    assert f"embedding: 100%|██████████| {N}/{N}" in run.stderr  # the progress bar stays
    noise = [ln for ln in printed.splitlines() if re.search(r"WARNING|core_worker|INFO|Traceback|\bE\b \d", ln)]
    assert not noise, "\n".join(noise)

    monkeypatch.setenv("VFM_LENS_DATA_ROOTS", str(tmp_path / "data"))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    found = at.selectbox(key="stored_found")
    assert len(found.options) == 1 and found.options[0].startswith("photos.lance · DINOv2")  # folder · model
    assert found.placeholder == "1 found under the data roots"
    found.select(str(out.resolve())).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == f"{N:,}" and metrics["Classes"] == "2"
    at.button(key="stored_map_go").click().run()
    assert not at.exception, at.exception
    assert any(f"Fitted on a random sample of {N} of {N} rows" in c.value for c in at.caption)

    export = readme_command("export")  # export data/photos.lance photos.parquet
    done = subprocess.run(
        [sys.executable, "-m", "core.batch", *export], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert pq.read_table(tmp_path / export[2]).num_rows == N
