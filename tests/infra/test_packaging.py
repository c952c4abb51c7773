"""`pip install .` gives the management CLI and nothing else: only the packages calltrack and
calltrack_cli are installed, the command works without the dev extra, and the function packages,
infra and bench stay in the checkout. Offline: the wheel is built without build isolation and
installed with --no-index into a fresh venv that borrows the dev venv's third-party packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOT_SOURCE = (
    ".git",
    ".venv",
    "build",
    "cdk.out",
    "node_modules",
    "out",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
)

pytestmark = pytest.mark.timeout(30)


def _run(args: list[str], cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CALLTRACK_SOURCE", "VIRTUAL_ENV")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "src"  # a copy, so the build writes nothing into the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    out = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp),
            str(source),
        ],
        cwd=tmp,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (built,) = tmp.glob("calltrack-*.whl")
    return built


def test_the_wheel_holds_only_calltrack_and_the_cli_with_their_runtime_requirements(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = Parser().parsestr(zf.read(metadata).decode())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = zf.read(entry_points).decode()
    top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"calltrack", "calltrack_cli"}
    assert "calltrack/models/__init__.py" in names, "subpackages are in the wheel"
    requires = {
        r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
        for r in meta.get_all("Requires-Dist") or []
        if "extra ==" not in r
    }
    assert {"typer", "rich", "requests", "pyyaml", "pydantic", "phonenumberslite"} <= requires
    assert "calltrack = calltrack_cli.main:app" in scripts


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; third-party packages come from the dev venv's
    site-packages through a .pth path line (so the dev venv's editable finder is not active)."""
    root = tmp_path_factory.mktemp("venv") / "v"
    out = _run([sys.executable, "-m", "venv", "--without-pip", str(root)], cwd=root.parent)
    assert out.returncode == 0, out.stderr
    python = root / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root
        ).stdout.strip()
    )
    (site / "zz_dev_site_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    out = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        cwd=root.parent,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return root


def test_installed_calltrack_prints_its_version_and_help_outside_a_checkout(venv: Path):
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    out = _run([str(venv / "bin" / "calltrack"), "--version"], cwd=venv.parent)
    assert (out.returncode, out.stdout.strip()) == (0, f"calltrack {version}"), out.stderr[-2000:]
    out = _run([str(venv / "bin" / "calltrack"), "--help"], cwd=venv.parent)
    assert out.returncode == 0 and "local" in out.stdout, out.stderr[-2000:]


def test_function_packages_infra_and_bench_are_not_installed(venv: Path):
    python = str(venv / "bin" / "python")
    out = _run([python, "-c", "import calltrack.settings, calltrack_cli.main"], cwd=venv.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in ("report", "voice_webhook", "dni_lease", "admin", "recording_ingest", "infra", "bench"):
        out = _run([python, "-c", f"import {name}"], cwd=venv.parent)
        assert out.returncode != 0 and "ModuleNotFoundError" in out.stderr, name


def test_the_local_runtime_outside_a_checkout_says_it_needs_one(venv: Path):
    out = _run([str(venv / "bin" / "calltrack"), "local", "serve", "--port", "0"], cwd=venv.parent)
    assert out.returncode == 2
    assert "needs a checkout of the calltrack repo" in out.stderr
