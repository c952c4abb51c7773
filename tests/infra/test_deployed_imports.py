"""Every function imports what it needs from its synthesized asset alone, under Python 3.12.

The handler tests run in the dev virtualenv, where everything is importable; this is the check
that a function's code asset plus the layer (plus the runtime's boto3) is all it needs in AWS.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from infra import deployed_imports
from infra.components.functions import construct_id
from infra.wiring import FUNCTIONS, WIRING
from tests.infra.conftest import synthesize


@pytest.fixture(scope="module")
def lambda_runtime(synth, tmp_path_factory):
    """(python3.12, the layer's python/ with host extensions, the boto3 stand-in)."""
    assert synth.real_layer, "run `make layer` before the infra tests (the check needs the real layer)"
    python = deployed_imports.lambda_python()
    layer_python, standin = deployed_imports.prepare_runtime(
        deployed_imports.layer_asset(synth.outdir), tmp_path_factory.mktemp("lambda-runtime")
    )
    return python, layer_python, standin


def _asset(outdir: Path, name: str) -> deployed_imports.FunctionAsset:
    pattern = re.compile(rf"Functions{construct_id(name)}[0-9A-F]{{8}}")
    [fn] = [a for a in deployed_imports.function_assets(outdir) if pattern.fullmatch(a.logical_id)]
    return fn


def test_every_function_of_the_template_is_checked(synth):
    # The fallback TwiML function is inline code; every wired function has an asset here
    checked = {a.handler for a in deployed_imports.function_assets(synth.outdir)}
    assert checked == {fn.handler for fn in FUNCTIONS}


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda fn: fn.name)
def test_the_function_imports_everything_it_names_from_its_asset_and_the_layer(synth, lambda_runtime, fn):
    python, layer_python, standin = lambda_runtime
    problems = deployed_imports.check(_asset(synth.outdir, fn.name), layer_python, standin, python)
    assert problems == [], "\n".join(problems)


def test_a_voice_webhook_without_its_recording_bundle_fails_naming_the_module_and_line(
    tmp_path, lambda_runtime
):
    # Given the stack re-synthesized with the voice webhook's bundle of recording_ingest removed
    python, layer_python, standin = lambda_runtime
    voice = WIRING.function("voice_webhook")
    assert voice.bundles == ("recording_ingest",)
    broken = dataclasses.replace(
        WIRING,
        functions=tuple(dataclasses.replace(f, bundles=()) if f is voice else f for f in WIRING.functions),
    )
    out = synthesize(tmp_path / "cdk.out", nag=False, wiring=broken)
    # When the check runs on its asset
    problems = deployed_imports.check(_asset(out.outdir, "voice_webhook"), layer_python, standin, python)
    # Then it fails, naming the module it cannot import and where
    assert problems, "the check passed an asset that lacks recording_ingest"
    source = (Path("functions") / "voice_webhook" / "handler.py").read_text().splitlines()
    lines = [n for n, text in enumerate(source, 1) if "from recording_ingest" in text]
    assert any(f"voice_webhook/handler.py:{lines[0]}: from recording_ingest" in p and "recording_ingest" in p
               for p in problems), problems
