"""One namespace: a regular install puts only ``wnrl`` in site-packages, with agents/ and envs/ inside it."""

import shutil
import subprocess
import sys

from tests.helpers import ROOT


def test_regular_install_has_one_top_level_package(tmp_path):
    src, target = tmp_path / "src", tmp_path / "site"  # a copy: building in place would leave build/ behind
    for name in ("wnrl", "agents", "envs"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target),
         str(src)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin") == ["wnrl"]
    code = (
        "import importlib.util as u, wnrl.agents.dqn as d, wnrl.envs as e; from wnrl.envs import make; "
        "print(d.__file__.startswith(sys.argv[1]), e.__file__.startswith(sys.argv[1]), "
        "u.find_spec('agents') is None, u.find_spec('envs') is None)"
    )
    r = subprocess.run(
        [sys.executable, "-c", "import sys; " + code, str(target)],
        capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert r.stdout.split() == ["True"] * 4, r.stderr
