"""Build the manager console (issue 23) into ``build/console/``: offline, from files already here.

    python -m calltrack_cli.console_build     # make setup runs it after `npm ci --prefix console`

Copies ``console/src`` (HTML, ES modules, CSS, i18n) and Chart.js's UMD dist file from
``console/node_modules`` into ``build/console/`` (gitignored), which the local gateway serves at
``/console/`` and the CDK stack uploads to the console bucket. JavaScript is minified with terser
when ``console/node_modules/terser`` is installed (and ``node`` is on PATH); otherwise copied as is.
Chart.js ships its own minified UMD build, which is copied (without its source-map comment).
Nothing is downloaded: without ``console/node_modules`` the build fails, saying how to install it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from calltrack_cli.source import checkout

CHART_DIST = Path("chart.js") / "dist" / "chart.umd.min.js"
TERSER_BIN = Path("terser") / "bin" / "terser"
VENDOR = Path("vendor") / "chart.umd.min.js"
INSTALL_HINT = "npm ci --prefix console --no-audit --no-fund"


class BuildError(Exception):
    """The console cannot be built here (the message says why and what to run)."""


@dataclass
class BuildResult:
    out: Path
    files: list[Path] = field(default_factory=list)
    minified: bool = False

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


def paths(root: Path) -> tuple[Path, Path, Path]:
    """(console/src, console/node_modules, build/console) in the checkout ``root``."""
    return root / "console" / "src", root / "console" / "node_modules", root / "build" / "console"


def _terser(node_modules: Path) -> list[str] | None:
    script = node_modules / TERSER_BIN
    node = shutil.which("node")
    if not script.is_file() or node is None:
        return None
    return [node, str(script)]


def _strip_source_map(text: str) -> str:
    lines = text.rstrip("\n").split("\n")
    while lines and lines[-1].startswith("//# sourceMappingURL="):
        lines.pop()
    return "\n".join(lines) + "\n"


def _minify(terser: list[str], source: Path, target: Path) -> None:
    # --module: the console's scripts are ES modules (strict, top-level names may be mangled);
    # license comments (/*! ... */) are kept.
    cmd = [*terser, str(source), "--module", "--compress", "--mangle", "--comments", "some"]
    cmd += ["-o", str(target)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"terser failed on {source.name}: {done.stderr.strip() or done.stdout.strip()}")


def build(root: Path | None = None, *, minify: bool = True) -> BuildResult:
    """Build into ``<root>/build/console`` (replacing what was there) and return what was written."""
    root = root or checkout()
    src, node_modules, out = paths(root)
    if not src.is_dir():
        raise BuildError(f"{src} is missing: is this a calltrack checkout?")
    chart = node_modules / CHART_DIST
    if not node_modules.is_dir():
        raise BuildError(f"console/node_modules is missing: run `{INSTALL_HINT}` (make setup does) first")
    if not chart.is_file():
        raise BuildError(f"{CHART_DIST} is not in console/node_modules: run `{INSTALL_HINT}` again")
    terser = _terser(node_modules) if minify else None
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    result = BuildResult(out=out, minified=terser is not None)
    try:
        for source in sorted(p for p in src.rglob("*") if p.is_file()):
            rel = source.relative_to(src)
            if any(part.startswith(".") for part in rel.parts):
                continue
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.suffix == ".js" and terser is not None:
                _minify(terser, source, target)
            else:
                shutil.copyfile(source, target)
            result.files.append(out / rel)
        vendor = staging / VENDOR
        vendor.parent.mkdir(parents=True, exist_ok=True)
        vendor.write_text(_strip_source_map(chart.read_text(encoding="utf-8")), encoding="utf-8")
        result.files.append(out / VENDOR)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        result = build(minify="--no-minify" not in args)
    except BuildError as exc:
        print(f"console build: error: {exc}", file=sys.stderr)
        return 2
    how = "minified with terser" if result.minified else "copied (terser not installed)"
    print(f"console: {len(result.files)} files, {result.total_bytes} bytes in {result.out} ({how})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
