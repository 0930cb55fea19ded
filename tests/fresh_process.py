"""Which modules a piece of code imports, run in a fresh Python process."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable


def modules_loaded(code: str, modules: Iterable[str], timeout: float = 300) -> list[str]:
    """Run ``code`` in a new interpreter and return which of ``modules`` it imported, sorted."""
    script = f"import sys\n{code}\nprint(sorted(set({sorted(modules)!r}) & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])
