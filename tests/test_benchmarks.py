"""Every benchmark script imports cleanly: a renamed library name breaks the script, not a user's run later."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
# Scripts, not the modules they share (those are imported by the scripts).
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if 'if __name__ == "__main__"' in p.read_text())


def test_there_are_benchmarks():
    assert len(SCRIPTS) >= 5


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_script_imports_without_running(script, monkeypatch):
    monkeypatch.setattr(sys, "path", [str(BENCHMARKS), *sys.path])  # as `python benchmarks/x.py` has it
    namespace = runpy.run_path(str(script), run_name="benchmark_import_check")  # main() runs only as __main__
    assert callable(namespace.get("main")), f"{script.name} has no main()"
