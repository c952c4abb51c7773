"""P6: each function asset and the layer, zipped and unzipped, from a real synthesis.

The stack is synthesized (real Docker-free layer bundling from ``make layer``'s cache, cdk-nag off)
into a temporary cdk.out; ``infra.assets.asset_sizes`` maps every Lambda function and layer to its
asset directory and zips it at the default deflate level.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

from bench.common import FigureResult, Row, verdict

MB = 1024 * 1024
SYNTH_CONTEXT: dict[str, object] = {
    "twilioAccountSid": "AC" + "0123456789abcdef" * 2,
    "twilioApiKey": "SK" + "0" * 32,
    "fallbackForwardTo": "+81312345678",
}


def _short(logical_id: str) -> str:
    m = re.match(r"^Functions(\w+?)[0-9A-F]{8}$", logical_id)
    return m.group(1) if m else logical_id


def run() -> FigureResult:
    started = time.perf_counter()
    result = FigureResult("P6", "Asset sizes (synthesized, zipped at default deflate)")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
    os.environ.setdefault("JSII_DEPRECATED", "quiet")
    from infra import layer
    from infra.app import build_app
    from infra.assets import FUNCTION_ZIPPED_LIMIT, LAYER_ZIPPED_LIMIT, asset_sizes

    real_layer = layer.is_built()
    with tempfile.TemporaryDirectory(prefix="bench-cdk-") as tmp:
        app, _ = build_app({**SYNTH_CONTEXT, "calltrack:stubLayer": not real_layer}, outdir=tmp, nag=False)
        app.synth()
        sizes = asset_sizes(Path(tmp))
        assets = []
        for size in sizes:
            limit = LAYER_ZIPPED_LIMIT if size.kind == "layer" else FUNCTION_ZIPPED_LIMIT
            name = "layer" if size.kind == "layer" else ", ".join(_short(u) for u in size.users)
            status = verdict(size.zipped <= limit)
            if size.kind == "layer" and not real_layer:
                status = "MISS"
                name += " (STUB: run `make layer`; real size unknown)"
            assets.append(
                {
                    "kind": size.kind,
                    "users": list(size.users),
                    "zipped": size.zipped,
                    "unzipped": size.unzipped,
                }
            )
            result.rows.append(
                Row(
                    f"P6 {size.kind} {name}",
                    f"{size.zipped / MB:.2f} MB zipped, {size.unzipped / MB:.2f} MB unzipped",
                    f"<= {limit // MB} MB zipped",
                    size.zipped / limit,
                    status,
                )
            )
    result.details = {"assets": assets, "real_layer": real_layer}
    result.seconds = time.perf_counter() - started
    return result
