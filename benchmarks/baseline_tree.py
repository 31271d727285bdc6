"""An older revision of this repository, unpacked once beside a benchmark's files, to measure it side by
side with the working tree under the same machine load (``--baseline REV`` of the benchmarks)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def baseline_tree(rev: str, workdir: Path) -> Path:
    """The files of ``rev`` (any git revision) under ``workdir``, unpacked on first use."""
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    tree = workdir / f"baseline-{sha[:12]}"
    if not (tree / "atlas.py").is_file():
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            archive = Path(tmp) / "tree.tar"
            subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), sha], cwd=ROOT, check=True)
            with tarfile.open(archive) as tar:
                tar.extractall(Path(tmp) / "tree", filter="data")
            shutil.rmtree(tree, ignore_errors=True)
            (Path(tmp) / "tree").rename(tree)
    return tree


def benchmark_module(root: Path, name: str) -> ModuleType:
    """``benchmarks/<name>.py`` of the tree at ``root``, which puts that tree's deepmars first on
    sys.path: load it only in a process that has not imported deepmars yet (``call_in_tree``)."""
    spec = importlib.util.spec_from_file_location(name, root / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # a dataclass in it looks its module up there
    spec.loader.exec_module(module)
    return module


def call_in_tree(root: Path, name: str, function: str, *args) -> None:
    """``benchmarks/<name>.py``'s ``function(*args)`` (JSON values) of the tree at ``root``, in a new process."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import baseline_tree; "
            f"getattr(baseline_tree.benchmark_module(baseline_tree.Path(sys.argv[1]), sys.argv[2]), sys.argv[3])"
            f"(*json.loads(sys.argv[4]))")
    subprocess.run([sys.executable, "-c", code, str(root), name, function, json.dumps(list(args))], cwd=root,
                   check=True)
