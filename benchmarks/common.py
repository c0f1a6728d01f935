"""Helpers the benchmark scripts share: running the project's commands and reading their JSON.

Notebook: notebooks/04_front_ends.ipynb
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_parallel(commands: list[list[str]], jobs: int) -> None:
    """Run commands, ``jobs`` at a time; stop on the first failure."""
    running: list[subprocess.Popen] = []

    def reap(block: bool) -> list[subprocess.Popen]:
        alive = []
        for p in running:
            code = p.wait() if block else p.poll()
            if code is None:
                alive.append(p)
            elif code != 0:
                raise SystemExit(f"failed: {' '.join(p.args)}")
        return alive

    for cmd in commands:
        while len(running) >= jobs:
            running = reap(block=False)
            time.sleep(0.5)
        print("$", " ".join(cmd), flush=True)
        running.append(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL))
    reap(block=True)


def last_json(cmd: list[str]) -> dict:
    """Run a command from the repository root and return the JSON object of its last line.

    Stops the benchmark with the command's standard error when it fails.
    """
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
