"""The deployed-imports checker's reading of import statements (infra/import_check.py)."""

from __future__ import annotations

import ast

from infra.import_check import check_file, import_nodes, reachable_files


def names(source: str) -> list[int]:
    return [node.lineno for node in import_nodes(ast.parse(source))]


def test_lazy_imports_count_and_type_checking_or_optional_imports_do_not():
    source = """
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from mypy_boto3_dynamodb import Client
def handler():
    from recording_ingest.callback import handle
try:
    import ujson
except ImportError:
    ujson = None
"""
    # Line 2 (typing) and line 6 (inside a function) run in production; 4 and 8 are not required
    assert names(source) == [2, 6]


def test_a_missing_module_or_name_is_reported_with_file_and_line(tmp_path):
    pkg = tmp_path / "hook"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "handler.py").write_text(
        "import json\nfrom json import nope\n\ndef f():\n    import no_such_mod\n"
    )
    problems = check_file(str(pkg / "handler.py"), str(tmp_path))
    assert problems[0].startswith("hook/handler.py:2: from json import nope")
    assert problems[1].startswith("hook/handler.py:5: import no_such_mod — ModuleNotFoundError")
    assert len(problems) == 2


def test_only_files_the_handler_can_reach_are_walked(tmp_path):
    # Given a folder with two Lambdas: the consumer never imports the API module
    pkg = tmp_path / "report"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "consumer.py").write_text("from report import pure\n")
    (pkg / "pure.py").write_text("import json\n")
    (pkg / "api.py").write_text("import call_records\n")
    reached = [path for path, _ in reachable_files("report.consumer", str(tmp_path), str(tmp_path / "layer"))]
    assert sorted(p.rsplit("/", 1)[1] for p in reached) == ["__init__.py", "consumer.py", "pure.py"]
