"""A test plugin that declares stage resources and can stall a run stage so a test can kill its worker.

Loaded by recipes next to ``mlp_porter`` (it registers no names, so cache keys do not change):

- ``PORTER_TEST_STAGE_RESOURCES`` (read on the driver, where placement is decided): ``stage:name=amount`` items
  separated by ``;``, e.g. ``compile:builder=1;run:runner=1`` (the default). An empty value declares nothing.
- ``PORTER_TEST_STALL_DIR`` (read in the workers): when the file ``stall-run`` exists in that folder, the first
  run stage to see it claims it by renaming it to ``stalled-<pid>`` and then sleeps, so the test knows which
  worker process to kill or the driver to interrupt. Claiming is a rename, so only one stage ever stalls; the
  file's text is how many seconds to sleep (empty: 120).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from porter import hookimpl

PLUGIN_VERSION = "1.0"
DEFAULT_NEEDS = "compile:builder=1;run:runner=1"
STALL_SECONDS = 120


def _needs() -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for item in os.environ.get("PORTER_TEST_STAGE_RESOURCES", DEFAULT_NEEDS).split(";"):
        if not item.strip():
            continue
        stage, _, pairs = item.partition(":")
        for pair in pairs.split(","):
            name, _, amount = pair.partition("=")
            out.setdefault(stage.strip(), {})[name.strip()] = float(amount or 1)
    return out


@hookimpl
def porter_stage_resources(stage, target):
    return _needs().get(stage)


@hookimpl
def porter_stage_started(stage, workdir):
    # an observer: stage hooks go only to the plugin that owns the name, so this plugin cannot sit in porter_run
    stall_dir = os.environ.get("PORTER_TEST_STALL_DIR")
    if stage == "run" and stall_dir:
        marker = Path(stall_dir) / "stall-run"
        claimed = Path(stall_dir) / f"stalled-{os.getpid()}"
        try:
            os.rename(marker, claimed)
        except FileNotFoundError:
            return
        (workdir / "partial-output.bin").write_bytes(b"half")  # what a killed stage leaves in its work dir
        time.sleep(float(claimed.read_text().strip() or STALL_SECONDS))
        (workdir / "partial-output.bin").unlink()  # the stage went on to finish: nothing partial remains
