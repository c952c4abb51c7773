"""The shared Lambda layer: `layers/calltrack` plus the runtime dependencies, built without Docker.

Two steps, so that synthesis never touches the network:

1. ``make layer`` (run by ``make setup``) calls ``python -m infra.layer build``: one
   ``uv pip install --python-platform aarch64-manylinux2014 --python-version 3.12
   --only-binary :all: --no-deps -r layers/requirements.lock`` into ``build/layer/<key>/python``
   (about 2 s; the same ``pip install --platform ...`` when uv fails, about 14 s),
   where ``<key>`` hashes the lock file's content and the target platform (so it is also the
   layer's asset hash). An existing cache dir is reused.
2. At synth, :class:`LayerBundling` (CDK ``ILocalBundling``) copies that cache plus the
   ``calltrack`` package into the asset output dir. No pip, no Docker, no network.

3. For the deployed-imports check (``infra.deployed_imports``), ``make layer`` also installs the
   same lock for *this* machine's architecture into ``build/layer/<key>-<machine>/python``: only
   its compiled extensions are used, laid over a copy of the layer asset, so a Python 3.12 here
   can import what the arm64 layer holds.

The requirements have their own home, ``layers/requirements.in`` (what ``functions/`` and
``layers/calltrack`` import; not the CLI's pyyaml, typer, ...), resolved by ``make lock`` into
``layers/requirements.lock``. boto3/botocore/s3transfer come with the Lambda runtime and are
removed from the layer.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYER_SOURCE = REPO_ROOT / "layers"
LOCK = LAYER_SOURCE / "requirements.lock"
CACHE_ROOT = REPO_ROOT / "build" / "layer"

PLATFORM = "manylinux2014_aarch64"
PYTHON_VERSION = "3.12"
# Provided by the Lambda Python runtime; keeping them out saves ~100 MB unzipped.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
# Dropped from the installed tree: byte-code, tests, type stubs the runtime never reads.
PRUNE_DIRS = ("__pycache__", "tests")


def runtime_requirements(lock: Path | None = None) -> list[str]:
    """The layer lock's pins (``name==version``), boto3 and its runtime-provided kin left out."""
    pins = []
    for line in (lock or LOCK).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-") and _dist_name(line) not in RUNTIME_PROVIDED:
            pins.append(line)
    return sorted(pins)


def _dist_name(requirement: str) -> str:
    name = requirement
    for sep in "[<>=!~; ":
        name = name.split(sep, 1)[0]
    return name.strip().lower().replace("_", "-")


def cache_key(lock_text: str | None = None) -> str:
    """Hash of the lock file's content and the target platform: the cache dir and the asset hash."""
    text = lock_text if lock_text is not None else LOCK.read_text()
    lock = hashlib.sha256(text.encode()).hexdigest()
    blob = json.dumps({"lock": lock, "platform": PLATFORM, "python": PYTHON_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_dir(lock_text: str | None = None) -> Path:
    """``build/layer/<key>``; its ``python/`` holds the installed dependencies when built."""
    return CACHE_ROOT / cache_key(lock_text)


def is_built(path: Path | None = None) -> bool:
    return ((path or cache_dir()) / ".complete").exists()


def host_platform() -> str:
    """The manylinux platform tag of this machine (x86_64 here, aarch64 on Graviton)."""
    return f"manylinux2014_{platform.machine()}"


def host_cache_dir(lock_text: str | None = None) -> Path:
    """``build/layer/<key>-<machine>``: the lock's wheels for this machine (deployed-imports check)."""
    return CACHE_ROOT / f"{cache_key(lock_text)}-{platform.machine()}"


def uv_command(target: Path, lock: Path, platform_tag: str = PLATFORM) -> list[str]:
    """The uv invocation that builds the dependencies for the Lambda runtime (arm64, cp312): the
    lock's pins exactly, as :func:`pip_command` does, in a tenth of the time. uv comes with the dev
    lock, next to this interpreter."""
    machine = platform_tag.removeprefix("manylinux2014_")
    return [
        str(Path(sys.executable).parent / "uv"),
        "pip",
        "install",
        "--quiet",
        "--target",
        str(target),
        "--python-platform",
        f"{machine}-manylinux2014",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary",
        ":all:",
        "--no-compile",
        "--no-deps",
        "--requirement",
        str(lock),
    ]


def pip_command(target: Path, lock: Path, platform_tag: str = PLATFORM) -> list[str]:
    """The pip invocation that builds the dependencies for the Lambda runtime (arm64, cp312) when uv
    is missing or fails: exactly the lock's pins (``--no-deps``: the lock is complete)."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
        str(target),
        "--platform",
        platform_tag,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--no-compile",
        "--upgrade",
        "--no-deps",
        "--requirement",
        str(lock),
    ]


def build(force: bool = False) -> Path:
    """Fill the cache (network: run at setup time only), and its copy for this machine's
    architecture when that is not the layer's. Returns the layer's cache dir."""
    lock_text = LOCK.read_text()
    out = cache_dir(lock_text)
    _install(out, PLATFORM, force)
    if host_platform() != PLATFORM:
        _install(host_cache_dir(lock_text), host_platform(), force)
    return out


def _install(out: Path, platform_tag: str, force: bool) -> None:
    if is_built(out) and not force:
        return
    if out.exists():
        shutil.rmtree(out)
    target = out / "python"
    target.mkdir(parents=True)
    try:
        subprocess.run(uv_command(target, LOCK, platform_tag), check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"uv could not install the layer ({error}); installing it with pip ...", file=sys.stderr)
        shutil.rmtree(target)
        target.mkdir()
        subprocess.run(pip_command(target, LOCK, platform_tag), check=True)
    prune(target)
    (out / ".complete").write_text(json.dumps({"requirements": runtime_requirements()}, indent=2))


def prune(target: Path) -> None:
    for entry in list(target.iterdir()):
        name = entry.name.lower()
        if any(name == p or name.startswith(p + "-") for p in RUNTIME_PROVIDED) or name == "bin":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for pattern in PRUNE_DIRS:
        for d in sorted(target.rglob(pattern), reverse=True):
            if d.is_dir():
                shutil.rmtree(d, ignore_errors=True)


def source_hash(root: Path) -> str:
    """Content hash of a source tree (ignores byte-code), for stable custom asset hashes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def copy_package(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["build"]:
        out = build(force="--force" in argv)
        print(out)
        return 0
    if argv[:1] == ["path"]:
        print(cache_dir())
        return 0 if is_built() else 1
    print("usage: python -m infra.layer build [--force] | path", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
