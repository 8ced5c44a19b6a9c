"""ESLint over the add-in's served JavaScript (excel_addin/src), with the version pinned in
excel_addin/package-lock.json (installed by `make node`); any finding, warning or error, fails."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.live import ROOT

ADDIN = ROOT / "excel_addin"
ESLINT = ADDIN / "node_modules" / ".bin" / "eslint"
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


def test_eslint_finds_nothing_in_src():
    # a gate, so a missing install fails rather than skips
    assert ESLINT.exists(), "ESLint is not installed: run `make node` (npm ci in excel_addin)"
    proc = subprocess.run([str(ESLINT), "--max-warnings", "0", "src"], cwd=ADDIN,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
