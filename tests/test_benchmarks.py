"""Every benchmark script imports cleanly: a renamed library name breaks the script, not a user's run later."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


def test_there_are_benchmarks():
    assert len(SCRIPTS) >= 5


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_script_imports_without_running(script):
    namespace = runpy.run_path(str(script), run_name="benchmark_import_check")  # main() runs only as __main__
    assert callable(namespace.get("main")), f"{script.name} has no main()"
