"""python -m calltrack_cli.console_build (issue 23): console/src and Chart.js's UMD file into
build/console, offline; a clear failure without console/node_modules. Also guards the console's
sources against what its Content-Security-Policy forbids (inline script, style, event handlers)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from calltrack_cli import console_build
from calltrack_cli.console_build import BuildError, build
from calltrack_cli.source import checkout

CHART = (
    "/*!\n * Chart.js v4\n */\n!function(t){t.Chart=1}(this);\n"
    "//# sourceMappingURL=chart.umd.min.js.map\n"
)


def _checkout(tmp_path: Path, *, node_modules: bool = True, chart: bool = True) -> Path:
    src = tmp_path / "console" / "src"
    (src / "js" / "pages").mkdir(parents=True)
    (src / "css").mkdir()
    (src / "index.html").write_text("<!doctype html><script type=module src=js/app.js></script>\n")
    (src / "js" / "app.js").write_text("import { x } from './pages/a.js';\nexport const longName = x + 1;\n")
    (src / "js" / "pages" / "a.js").write_text("export const x = 41;\n")
    (src / "css" / "console.css").write_text("body { margin: 0; }\n")
    (src / ".DS_Store").write_text("junk")
    if node_modules:
        dist = tmp_path / "console" / "node_modules" / "chart.js" / "dist"
        dist.mkdir(parents=True)
        if chart:
            (dist / "chart.umd.min.js").write_text(CHART)
    return tmp_path


def test_copies_the_sources_and_the_chart_library(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    result = build(root, minify=False)
    out = root / "build" / "console"
    assert result.out == out and not result.minified
    for rel in ("index.html", "js/app.js", "js/pages/a.js", "css/console.css"):
        assert (out / rel).read_bytes() == (root / "console" / "src" / rel).read_bytes()
    vendor = (out / "vendor" / "chart.umd.min.js").read_text()
    assert vendor.startswith("/*!\n * Chart.js v4") and "sourceMappingURL" not in vendor
    assert not (out / ".DS_Store").exists()
    assert sorted(p.relative_to(out).as_posix() for p in result.files) == [
        "css/console.css", "index.html", "js/app.js", "js/pages/a.js", "vendor/chart.umd.min.js"]
    assert result.total_bytes == sum(p.stat().st_size for p in result.files)


def test_a_rebuild_replaces_the_old_build(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    build(root, minify=False)
    stale = root / "build" / "console" / "js" / "removed.js"
    stale.write_text("old")
    build(root, minify=False)
    assert not stale.exists()
    assert not (root / "build" / "console.tmp").exists()


def test_without_terser_the_scripts_are_copied(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    result = build(root)  # minify requested, but there is no terser in this node_modules
    assert not result.minified
    assert (root / "build" / "console" / "js" / "app.js").read_text().startswith("import { x }")


def test_missing_node_modules_fails_saying_what_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = _checkout(tmp_path, node_modules=False)
    with pytest.raises(BuildError, match=r"console/node_modules is missing: run `npm ci --prefix console"):
        build(root)
    assert not (root / "build" / "console").exists()
    monkeypatch.setattr(console_build, "checkout", lambda: root)
    assert console_build.main([]) == 2
    assert "npm ci --prefix console --no-audit --no-fund" in capsys.readouterr().err


def test_missing_chart_library_fails(tmp_path: Path) -> None:
    root = _checkout(tmp_path, chart=False)
    with pytest.raises(BuildError, match="chart.js"):
        build(root)


def test_a_failed_build_keeps_the_previous_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _checkout(tmp_path)
    build(root, minify=False)
    monkeypatch.setattr(console_build, "_terser", lambda nm: ["false"])  # a "minifier" that fails
    with pytest.raises(BuildError, match="terser failed on"):
        build(root)
    assert (root / "build" / "console" / "js" / "app.js").is_file()
    assert not (root / "build" / "console.tmp").exists()


TERSER = checkout() / "console" / "node_modules" / "terser" / "bin" / "terser"


@pytest.mark.skipif(not TERSER.is_file() or shutil.which("node") is None, reason="make setup installs terser")
def test_terser_minifies_es_modules_keeping_their_imports_and_exports(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    nm = root / "console" / "node_modules"
    (nm / "terser").symlink_to(TERSER.parent.parent)
    result = build(root)
    assert result.minified
    app = (root / "build" / "console" / "js" / "app.js").read_text()
    assert "\n" not in app.strip() and "longName" in app and "./pages/a.js" in app
    assert (root / "build" / "console" / "css" / "console.css").read_text() == "body { margin: 0; }\n"


# -- the real console's sources ---------------------------------------------------------------

SRC = checkout() / "console" / "src"


def _sources(*suffixes: str) -> list[Path]:
    return sorted(p for p in SRC.rglob("*") if p.suffix in suffixes)


def test_the_console_has_no_inline_script_style_or_handler() -> None:
    html = _sources(".html")
    assert [p.name for p in html] == ["index.html"]
    for page in html:
        text = page.read_text(encoding="utf-8")
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", text) == [], "inline <script>"
        assert "<style" not in text and not re.search(r"\sstyle\s*=", text)
        assert not re.search(r"\son[a-z]+\s*=", text), "inline event handler"
    for script in _sources(".js"):
        text = re.sub(r"^\s*//.*$", "", script.read_text(encoding="utf-8"), flags=re.M)  # not comments
        for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                          "new Function", "setAttribute(\"style\"", "localStorage", "sessionStorage",
                          "cssText"):
            assert forbidden not in text, f"{script.name}: {forbidden}"


def test_every_message_is_in_japanese_and_english() -> None:
    text = (SRC / "js" / "i18n.js").read_text(encoding="utf-8")
    en, ja = text.split("\n  ja: {", 1)
    keys = lambda part: set(re.findall(r'^\s+"([\w.]+)":', part, re.M))  # noqa: E731
    assert keys(en) == keys(ja) and len(keys(en)) > 50
    used = set()
    for script in _sources(".js"):
        used |= set(re.findall(r'\bt\("([\w.]+)"', script.read_text(encoding="utf-8")))
    used |= set(re.findall(r'data-i18n="([\w.]+)"', (SRC / "index.html").read_text(encoding="utf-8")))
    assert used - keys(en) == set()
