"""Run by the Lambda's Python (3.12) with ``-I -S``: can this asset import everything it names?

Usage: ``python3.12 -I -S -B infra/import_check.py HANDLER PATH [PATH ...]``, the paths in Lambda's
order (the function's code asset, the layer's ``python/``, the runtime's boto3). Standard library
only: nothing from the dev virtualenv is importable here, which is the point.

It imports the handler (module and attribute), then resolves every ``import`` statement of every
``.py`` file of the code asset and of the layer's ``calltrack`` package that the handler can reach
— at module level and inside functions alike, since a lazy import that fails in AWS fails only on
the request that reaches it. (A folder can hold several Lambdas, e.g. ``report`` holds the API and
the rollup consumer; the rollup's asset need not carry what only the API imports.) Skipped:
imports under ``if TYPE_CHECKING:`` and imports guarded by ``except ImportError`` or
``ModuleNotFoundError`` (optional by design). Prints one line per problem,
``path:line: module — error``, and exits 1 if there is any.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys

OPTIONAL_GUARDS = {"ImportError", "ModuleNotFoundError"}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _guards_imports(node: ast.Try) -> bool:
    for handler in node.handlers:
        names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(n, ast.Name) and n.id in OPTIONAL_GUARDS for n in names):
            return True
    return False


def import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that runs in production (see the module docstring for the skips)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for stmt in node.orelse:
                visit(stmt)
            return
        if isinstance(node, ast.Try) and _guards_imports(node):
            for part in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(part)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _package_of(path: str, root: str) -> str:
    rel = os.path.relpath(os.path.dirname(path), root)
    return "" if rel == "." else rel.replace(os.sep, ".")


def _resolve(module: str) -> str | None:
    """None when ``module`` imports, else the error."""
    try:
        importlib.import_module(module)
    except BaseException as exc:  # noqa: BLE001 - any failure to import is the finding
        return f"{type(exc).__name__}: {exc}"
    return None


def check_file(path: str, root: str) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), filename=path)
    shown = os.path.relpath(path, root)
    problems = []
    for node in import_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                error = _resolve(alias.name)
                if error:
                    problems.append(f"{shown}:{node.lineno}: import {alias.name} — {error}")
            continue
        base = node.module or ""
        if node.level:
            package = _package_of(path, root).split(".")
            package = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            base = ".".join([p for p in package if p] + ([base] if base else []))
        error = _resolve(base)
        if error:
            problems.append(f"{shown}:{node.lineno}: from {base} import … — {error}")
            continue
        module = sys.modules[base]
        for alias in node.names:
            if alias.name == "*" or hasattr(module, alias.name):
                continue
            if importlib.util.find_spec(f"{base}.{alias.name}") is None:
                problems.append(f"{shown}:{node.lineno}: from {base} import {alias.name} — no such name")
            elif error := _resolve(f"{base}.{alias.name}"):
                problems.append(f"{shown}:{node.lineno}: from {base} import {alias.name} — {error}")
    return problems


def module_file(name: str, roots: list[str]) -> tuple[str, str] | None:
    """(file, root) of a module that lives in one of ``roots`` (package or module), else None."""
    parts = name.split(".")
    for root in roots:
        base = os.path.join(root, *parts)
        for candidate in (os.path.join(base, "__init__.py"), base + ".py"):
            if os.path.isfile(candidate):
                return candidate, root
    return None


def imported_names(path: str, root: str) -> list[str]:
    """Module names an file's imports may load (a ``from m import n`` may load ``m.n``)."""
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), filename=path)
    names: list[str] = []
    for node in import_nodes(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
            continue
        base = node.module or ""
        if node.level:
            package = _package_of(path, root).split(".")
            package = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            base = ".".join([p for p in package if p] + ([base] if base else []))
        names.append(base)
        names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return names


def reachable_files(handler_module: str, asset: str, layer: str) -> list[tuple[str, str]]:
    """Every file of the asset and of the layer's ``calltrack`` the handler's module can import,
    transitively (lazy imports too); third-party packages are resolved, not walked."""
    seen: dict[str, str] = {}
    todo = [handler_module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        roots = [layer] if parts[0] == "calltrack" else [asset]
        # importing a.b.c runs a/__init__, a/b/__init__ and a/b/c
        for i in range(1, len(parts) + 1):
            found = module_file(".".join(parts[:i]), roots)
            if found and found[0] not in seen:
                seen[found[0]] = found[1]
                todo += imported_names(*found)
    return sorted(seen.items())


def main(argv: list[str]) -> int:
    handler, paths = argv[0], argv[1:]
    sys.path[:0] = paths
    problems = []
    module_name, _, attr = handler.rpartition(".")
    error = _resolve(module_name)
    if error:
        problems.append(f"handler {handler}: {error}")
    elif not callable(getattr(sys.modules[module_name], attr, None)):
        problems.append(f"handler {handler}: {module_name} has no callable {attr}")
    asset, layer = paths[0], paths[1]
    for path, root in reachable_files(module_name, asset, layer):
        problems += check_file(path, root)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
