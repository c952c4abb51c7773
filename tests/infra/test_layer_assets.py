"""The shared layer and function assets: built without Docker, small, and without boto3."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import assets, layer
from infra.components.functions import construct_id
from infra.wiring import FUNCTIONS

MAKE_LAYER = "run `make layer` (.venv/bin/python -m infra.layer build) before the infra tests"


def test_pip_command_installs_the_lock_for_the_lambda_runtime_with_wheels_only(tmp_path):
    command = layer.pip_command(tmp_path / "python", layer.LOCK)
    joined = " ".join(command)
    assert "--platform manylinux2014_aarch64" in joined
    assert "--implementation cp" in joined
    assert "--python-version 3.12" in joined
    assert "--only-binary=:all:" in joined
    assert f"--target {tmp_path / 'python'}" in joined
    assert f"--no-deps --requirement {layer.LOCK}" in joined


def test_uv_command_installs_the_same_pins_for_the_same_platform_as_pip(tmp_path):
    command = " ".join(layer.uv_command(tmp_path / "python", layer.LOCK))
    assert "--python-platform aarch64-manylinux2014" in command
    assert "--python-version 3.12" in command
    assert "--only-binary :all:" in command
    assert f"--target {tmp_path / 'python'}" in command
    assert f"--no-deps --requirement {layer.LOCK}" in command
    host = " ".join(layer.uv_command(tmp_path, layer.LOCK, "manylinux2014_x86_64"))
    assert "--python-platform x86_64-manylinux2014" in host


def test_a_failing_uv_falls_back_to_pip_in_an_empty_target(tmp_path, monkeypatch):
    # Given uv that leaves a partial install behind and fails
    calls = []

    def run(command, check):
        calls.append(command)
        target = Path(command[command.index("--target") + 1])
        if "uv" in Path(command[0]).name:
            (target / "half-installed").mkdir()
            raise layer.subprocess.CalledProcessError(2, command)
        (target / "twilio").mkdir()

    monkeypatch.setattr(layer.subprocess, "run", run)
    # When the layer is installed
    layer._install(tmp_path / "out", layer.PLATFORM, force=True)
    # Then pip installed it into an empty target and the cache is complete
    assert [Path(c[0]).name for c in calls] == ["uv", Path(layer.sys.executable).name]
    assert sorted(p.name for p in (tmp_path / "out" / "python").iterdir()) == ["twilio"]
    assert layer.is_built(tmp_path / "out")


def _names(lines):
    return {layer._dist_name(r) for r in lines if r.strip() and not r.lstrip().startswith("#")}


def test_the_layer_lock_pins_every_layer_requirement_and_nothing_for_the_cli_only():
    # Given the layer's requirements (what functions/ and layers/calltrack import) and their lock
    wanted = _names((layer.LAYER_SOURCE / "requirements.in").read_text().splitlines())
    pins = layer.runtime_requirements()
    # Then every requirement is pinned to one version, boto3 is left to the runtime,
    assert wanted <= _names(pins), "run `make lock` after editing layers/requirements.in"
    assert all("==" in pin for pin in pins), pins
    assert {"aws-lambda-powertools", "twilio", "pynamodb", "phonenumberslite", "pydantic", "tzdata"} <= wanted
    assert "boto3" not in _names(pins)
    # and the CLI's own requirements stay out of the Lambda layer
    assert not {"pyyaml", "typer", "rich"} & _names(pins)


def test_cache_key_is_the_lock_content():
    assert layer.cache_key("a==1\n") != layer.cache_key("a==2\n")
    assert layer.cache_key("a==1\n") == layer.cache_key("a==1\n")
    assert layer.cache_key() == layer.cache_key(layer.LOCK.read_text())


def test_prune_removes_runtime_provided_packages(tmp_path):
    for name in ("boto3", "botocore-1.0.dist-info", "twilio", "bin"):
        (tmp_path / name).mkdir()
    (tmp_path / "twilio" / "__pycache__").mkdir()
    layer.prune(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["twilio"]
    assert not (tmp_path / "twilio" / "__pycache__").exists()


def test_function_assets_are_their_packages_only(synth):
    from infra.wiring import WIRING

    expected = {frozenset((fn.folder, *fn.bundles)) for fn in WIRING.functions}
    for size in assets.asset_sizes(synth.outdir):
        if size.kind == "function":
            entries = sorted(p.name for p in size.directory.iterdir())
            assert all((size.directory / e / "__init__.py").exists() for e in entries), entries
            assert frozenset(entries) in expected or len(entries) == 1, entries
            assert not list(size.directory.rglob("__pycache__"))


NOT_PRODUCT = ("bench_support.py", "benchmark.py", "seed.py", "minify.py")


def test_function_assets_hold_only_product_code(synth):
    # Benchmark drivers, seeders, minifiers and in-memory fakes live in bench/, tests/ and the CLI
    for size in assets.asset_sizes(synth.outdir):
        if size.kind != "function":
            continue
        files = [p for p in size.directory.rglob("*") if p.is_file()]
        assert not [p.name for p in files if p.name in NOT_PRODUCT], size.users
        assert not [p for p in files if p.suffix == ".py" and "class InMemory" in p.read_text()], size.users


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda fn: fn.name)
def test_each_function_asset_holds_its_folder_and_exactly_the_packages_it_bundles(synth, fn):
    # Given the wiring: a function's folder plus the folders it hands work to (``bundles``), e.g.
    # voice_webhook's /twilio/recording -> recording_ingest.callback, report_api -> call_records
    (asset,) = [s for s in assets.asset_sizes(synth.outdir)
                if s.kind == "function" and any(u.startswith(f"Functions{construct_id(fn.name)}")
                                                 for u in s.users)]
    # Then exactly those packages are in its deployed asset, so no import can fail in AWS
    packages = {p.name for p in asset.directory.iterdir() if (p / "__init__.py").exists()}
    assert packages == {fn.folder, *fn.bundles}


def test_layer_contains_the_calltrack_package(synth):
    (layer_asset,) = [s for s in assets.asset_sizes(synth.outdir) if s.kind == "layer"]
    assert (layer_asset.directory / "python" / "calltrack" / "settings.py").exists()
    assert not (layer_asset.directory / "python" / "boto3").exists()
    assert not (layer_asset.directory / "python" / "botocore").exists()


def test_real_layer_has_the_runtime_dependencies_for_arm64(synth):
    if not synth.real_layer:
        pytest.fail(MAKE_LAYER)
    (layer_asset,) = [s for s in assets.asset_sizes(synth.outdir) if s.kind == "layer"]
    python = layer_asset.directory / "python"
    for package in ("aws_lambda_powertools", "twilio", "pynamodb", "phonenumbers", "pydantic", "tzdata"):
        assert (python / package).is_dir(), package
    assert not (python / "yaml").exists(), "pyyaml is the CLI's, not the functions'"
    cores = list(python.glob("pydantic_core/_pydantic_core.cpython-312-aarch64-linux-gnu.so"))
    assert cores, "binary wheels are for CPython 3.12 on aarch64"


def test_assets_are_within_size_targets(synth):
    sizes = assets.asset_sizes(synth.outdir)
    assert {s.kind for s in sizes} == {"function", "layer"}
    for size in sizes:
        assert size.zipped <= size.limit, (size.users, size.zipped)
    layer_unzipped = sum(s.unzipped for s in sizes if s.kind == "layer")
    biggest_function = max(s.unzipped for s in sizes if s.kind == "function")
    assert layer_unzipped + biggest_function < assets.LAMBDA_UNZIPPED_LIMIT


def test_source_hash_ignores_bytecode(tmp_path: Path):
    (tmp_path / "a.py").write_text("x = 1\n")
    before = layer.source_hash(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert layer.source_hash(tmp_path) == before
    (tmp_path / "a.py").write_text("x = 2\n")
    assert layer.source_hash(tmp_path) != before
