"""What `calltrack demo` imports before it puts the checkout on the path (``calltrack_cli.source``).

`pip install .` installs only ``calltrack`` and ``calltrack_cli``; ``infra`` and the function
folders join ``sys.path`` when a command calls ``use_checkout``. A module the demo imports first
must not need them: on 2026-12-04 the demo's player imported the local gateway (which imports
``infra``) at the top, and `make demo` stopped at once with "No module named 'infra'".
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_demos_first_imports_need_no_checkout_on_the_path(tmp_path: Path) -> None:
    # Given a Python whose path holds the installed packages only (run from elsewhere)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # When it imports what `calltrack demo` imports before use_checkout
    first = "import calltrack_cli.main, calltrack_cli.demo.present, calltrack_cli.demo.runner"
    done = subprocess.run(
        [sys.executable, "-c", first],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    # Then nothing is missing
    assert done.returncode == 0, done.stderr[-2000:]
