"""The deployed-imports check: every function imports from its synthesized asset alone.

Tests run the handlers in the development virtualenv, where every dev dependency is importable; a
function whose asset plus the layer lacks a module it imports passes them all and fails in AWS
(this happened once: the voice webhook's asset lacked the recording hand-off). This check runs,
for every Lambda function of a synthesized template, the runtime's Python (3.12) isolated
(``-I -S``) with exactly Lambda's path: the function's code asset, the layer asset's ``python/``
(its arm64 compiled extensions overlaid with this machine's from the same lock, see
``infra.layer.host_cache_dir``) and a stand-in for the runtime's boto3. ``infra/import_check.py``
then imports the handler and resolves every import statement (see its docstring).

``python -m infra.deployed_imports [CDK_OUT]`` runs it on a synthesized app (``cdk.out`` by default).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from infra import layer

CHECKER = Path(__file__).with_name("import_check.py")
# What the Lambda Python runtime provides next to the layer (boto3 and its dependencies).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
PYTHON_ENV = "CALLTRACK_LAMBDA_PYTHON"  # override the interpreter (default: python3.12 or pyenv's)


class CheckUnavailable(RuntimeError):
    """The check cannot run here (no Python 3.12, layer not built); the message says what to do."""


@dataclass(frozen=True)
class FunctionAsset:
    logical_id: str
    handler: str
    code: Path


def lambda_python() -> str:
    """The Lambda runtime's Python version on this machine: $CALLTRACK_LAMBDA_PYTHON, pyenv's newest
    3.12, or a python3.12 on PATH that runs (a pyenv shim of an inactive version does not)."""
    if os.environ.get(PYTHON_ENV):
        return os.environ[PYTHON_ENV]
    version = layer.PYTHON_VERSION
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates = sorted(root.glob(f"{version}.*/bin/python{version}")) if root.is_dir() else []
    found = shutil.which(f"python{version}")
    for python in [str(c) for c in reversed(candidates)] + ([found] if found else []):
        probe = subprocess.run([python, "-I", "-S", "-c", "import sys; print(sys.version_info[:2])"],
                               capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip() == str(tuple(map(int, version.split(".")))):
            return python
    raise CheckUnavailable(
        f"Python {version} (the Lambda runtime) not found: install it (pyenv install {version}) "
        f"or set {PYTHON_ENV}"
    )


def function_assets(cdk_out: Path, stack: str = "Calltrack") -> list[FunctionAsset]:
    template = json.loads((cdk_out / f"{stack}.template.json").read_text())
    found = []
    for logical_id, resource in sorted(template["Resources"].items()):
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        key = (resource["Properties"].get("Code") or {}).get("S3Key")
        if isinstance(key, str):  # inline code (the fallback TwiML function) has no asset
            found.append(FunctionAsset(logical_id, resource["Properties"]["Handler"],
                                       cdk_out / f"asset.{key.removesuffix('.zip')}"))
    return found


def layer_asset(cdk_out: Path, stack: str = "Calltrack") -> Path:
    template = json.loads((cdk_out / f"{stack}.template.json").read_text())
    keys = {
        r["Properties"]["Content"]["S3Key"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::LayerVersion"
    }
    if len(keys) != 1:
        raise CheckUnavailable(f"expected one layer in the template, found {len(keys)}")
    return cdk_out / f"asset.{keys.pop().removesuffix('.zip')}" / "python"


def prepare_runtime(layer_python: Path, workdir: Path) -> tuple[Path, Path]:
    """-> (the layer's python/ with this machine's compiled extensions added, the boto3 stand-in)."""
    host = layer.host_cache_dir() / "python"
    if layer.host_platform() != layer.PLATFORM and not layer.is_built(host.parent):
        raise CheckUnavailable("this machine's copy of the layer's wheels is missing: run `make layer`")
    merged = workdir / "layer-python"
    shutil.copytree(layer_python, merged, dirs_exist_ok=True)
    if host.is_dir():
        for path in host.rglob("*"):
            rel = path.relative_to(host)
            top = rel.parts[0]
            is_native = path.suffix == ".so" or top.endswith(".libs")
            if path.is_file() and is_native and ((merged / top).exists() or top.endswith(".libs")):
                (merged / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, merged / rel)
    standin = workdir / "lambda-runtime"
    standin.mkdir(exist_ok=True)
    for name in RUNTIME_PROVIDED:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise CheckUnavailable(f"{name} is not importable here to stand in for the Lambda runtime's")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        link = standin / source.name
        if not link.exists():
            link.symlink_to(source)
    return merged, standin


def check(fn: FunctionAsset, layer_python: Path, standin: Path, python: str | None = None) -> list[str]:
    """The problems of one function (empty when every import resolves)."""
    env = {"PATH": os.environ.get("PATH", ""), "POWERTOOLS_SERVICE_NAME": fn.logical_id,
           "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        [python or lambda_python(), "-I", "-S", "-B", str(CHECKER), fn.handler, str(fn.code),
         str(layer_python), str(standin)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode and not lines:
        lines = [f"checker failed: {result.stderr.strip()[-2000:]}"]
    return lines


def main(argv: list[str]) -> int:
    import tempfile

    cdk_out = Path(argv[0] if argv else "cdk.out")
    with tempfile.TemporaryDirectory() as tmp:
        merged, standin = prepare_runtime(layer_asset(cdk_out), Path(tmp))
        failed = 0
        for fn in function_assets(cdk_out):
            problems = check(fn, merged, standin)
            print(f"{'✘' if problems else '✔'} {fn.logical_id} ({fn.handler})")
            for line in problems:
                print(f"    {line}")
            failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
