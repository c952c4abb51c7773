"""Docker-free assets: CDK local bundling that copies prepared trees (no pip, no network at synth)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra import layer

# Never pulled: local bundling always succeeds, so CDK never falls back to Docker.
NO_DOCKER = DockerImage.from_registry("calltrack-local-bundling-only")


@jsii.implements(ILocalBundling)
class CopyTrees:
    """Copy ``(source, relative destination)`` trees into the asset output dir."""

    def __init__(self, trees: list[tuple[Path, str]]) -> None:
        self.trees = trees

    def try_bundle(self, output_dir: str, options: Any = None, **_: Any) -> bool:
        for source, dest in self.trees:
            layer.copy_package(source, Path(output_dir) / dest)
        return True


def function_code(folder: str, bundles: tuple[str, ...] = ()) -> lambda_.Code:
    """Asset = functions/<folder> as the package <folder>/ (handler 'voice_webhook.handler.handler'),
    plus any other function packages the wiring says it hands work to (``bundles``)."""
    sources = [layer.REPO_ROOT / "functions" / name for name in (folder, *bundles)]
    for source in sources:
        if not (source / "__init__.py").exists():
            raise FileNotFoundError(f"functions/{source.name} is not a package (wiring refers to it)")
    digest = hashlib.sha256(":".join(layer.source_hash(s) for s in sources).encode()).hexdigest()[:32]
    return lambda_.Code.from_asset(
        str(sources[0]),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=f"fn-{'+'.join((folder, *bundles))}-{digest}",
        bundling=BundlingOptions(image=NO_DOCKER, local=CopyTrees([(s, s.name) for s in sources])),
    )


def layer_code(deps_dir: Path | None) -> lambda_.Code:
    """Layer asset: python/calltrack + the prepared dependencies (``deps_dir``/python).

    ``deps_dir=None`` builds a stub layer with the calltrack package only (fast synth in tests
    when ``make layer`` has not run; never deploy it).
    """
    package = layer.LAYER_SOURCE / "calltrack"
    trees: list[tuple[Path, str]] = [(package, "python/calltrack")]
    key = "stub"
    if deps_dir is not None:
        if not layer.is_built(deps_dir):
            raise FileNotFoundError(
                f"{deps_dir} is not built: run `make layer` (python -m infra.layer build)"
            )
        trees.insert(0, (deps_dir / "python", "python"))
        key = deps_dir.name
    digest = hashlib.sha256(f"{key}:{layer.source_hash(package)}".encode()).hexdigest()[:32]
    return lambda_.Code.from_asset(
        str(package),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=f"layer-{digest}",
        bundling=BundlingOptions(image=NO_DOCKER, local=CopyTrees(trees)),
    )
