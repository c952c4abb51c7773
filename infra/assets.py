"""Asset sizes from a synthesized cloud assembly (for the README, the tests and the benchmarks).

    .venv/bin/python -m infra.assets [cdk.out]     # table of zipped / unzipped sizes

``asset_sizes(outdir)`` maps every Lambda function and layer in the stack template to its
asset directory (``asset.<hash>``, named by the ``S3Key`` in the template) and measures it:
``unzipped`` is the sum of file sizes, ``zipped`` the size of a deflate zip of the directory
(what ``cdk deploy`` uploads).
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

FUNCTION_ZIPPED_LIMIT = 5 * 1024 * 1024  # our target per function asset
LAYER_ZIPPED_LIMIT = 25 * 1024 * 1024  # our target for the layer
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # AWS: function + layers, unzipped


@dataclass(frozen=True)
class AssetSize:
    kind: str  # "function" or "layer"
    users: tuple[str, ...]  # logical ids of the resources using it
    directory: Path
    unzipped: int
    zipped: int

    @property
    def limit(self) -> int:
        return LAYER_ZIPPED_LIMIT if self.kind == "layer" else FUNCTION_ZIPPED_LIMIT


def _zipped_size(directory: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(directory).as_posix())
    return buffer.tell()


def asset_sizes(outdir: str | Path = "cdk.out", stack: str = "Calltrack") -> list[AssetSize]:
    out = Path(outdir)
    template = json.loads((out / f"{stack}.template.json").read_text())
    users: dict[str, tuple[str, list[str]]] = {}
    for logical_id, resource in template["Resources"].items():
        kind = {"AWS::Lambda::Function": "function", "AWS::Lambda::LayerVersion": "layer"}.get(
            resource["Type"]
        )
        if kind is None:
            continue
        props = resource["Properties"]
        code = props.get("Code") or props.get("Content") or {}
        key = code.get("S3Key")
        if not isinstance(key, str):
            continue  # inline code (the fallback function)
        asset_hash = key.removesuffix(".zip")
        users.setdefault(asset_hash, (kind, []))[1].append(logical_id)
    sizes = []
    for asset_hash, (kind, ids) in sorted(users.items(), key=lambda item: item[1][1]):
        directory = out / f"asset.{asset_hash}"
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory} (used by {', '.join(ids)}) is missing from {out}")
        unzipped = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
        sizes.append(AssetSize(kind, tuple(ids), directory, unzipped, _zipped_size(directory)))
    return sizes


def main(argv: list[str]) -> int:
    outdir = argv[0] if argv else "cdk.out"
    for size in asset_sizes(outdir):
        print(
            f"{size.kind:8} {size.zipped / 1e6:7.2f} MB zipped {size.unzipped / 1e6:7.2f} MB unzipped  "
            f"{', '.join(size.users)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
