"""The CDK app: `cdk synth` / `cdk deploy` (see docs/deploy.md).

Context (cdk.json or -c key=value): twilioAccountSid, twilioApiKey, twilioAuthTokenParam,
twilioApiSecretParam, adminTokenParam, publicUrl, fallbackForwardTo, logRetentionDays, ...
(infra/config.py lists them all). ``calltrack:stubLayer=true`` synthesizes without the layer's
dependencies (never deploy that); ``calltrack:nag=false`` skips cdk-nag.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python infra/app.py`: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if sys.path[1:2] == [str(Path(__file__).resolve().parent)]:
        del sys.path[1]

from aws_cdk import App, Environment, Validations  # noqa: E402

from infra import layer  # noqa: E402
from infra.config import DeployConfig  # noqa: E402
from infra.stack import CalltrackStack  # noqa: E402
from infra.wiring import WIRING, Wiring  # noqa: E402

STACK_NAME = "Calltrack"
CDK_JSON = layer.REPO_ROOT / "cdk.json"


def cdk_json_context() -> dict[str, object]:
    """cdk.json's context (feature flags, defaults); the CLI's -c values take precedence."""
    return dict(json.loads(CDK_JSON.read_text()).get("context", {}))


def _flag(app: App, key: str, default: bool) -> bool:
    value = app.node.try_get_context(key)
    if value is None:
        return default
    return str(value).lower() in ("1", "true", "yes")


def build_app(
    context: dict[str, object] | None = None,
    *,
    outdir: str | None = None,
    wiring: Wiring = WIRING,
    nag: bool | None = None,
) -> tuple[App, CalltrackStack]:
    """Build (not synth) the app; tests and `python infra/app.py` share this."""
    app = App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    config = DeployConfig.from_context(app.node.try_get_context)
    stub = _flag(app, "calltrack:stubLayer", False)
    deps = None if stub else layer.cache_dir()
    if deps is not None and not layer.is_built(deps):
        raise SystemExit(f"the layer's dependencies are not built ({deps}): run `make layer` first")
    env = None
    if os.environ.get("CDK_DEFAULT_ACCOUNT") and os.environ.get("CDK_DEFAULT_REGION"):
        env = Environment(account=os.environ["CDK_DEFAULT_ACCOUNT"], region=os.environ["CDK_DEFAULT_REGION"])
    stack = CalltrackStack(app, STACK_NAME, wiring=wiring, config=config, layer_deps=deps, env=env)
    if nag if nag is not None else _flag(app, "calltrack:nag", True):
        from cdk_nag import AwsSolutionsChecks

        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
