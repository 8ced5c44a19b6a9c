"""The lint and type gates (issue #18, part 5): ``ruff check server tests bench`` with
pyproject.toml's [tool.ruff] and ``mypy server`` with setup.cfg's [mypy] find nothing. Each fails
with the tool's own output; the last two tests show that each gate can fail at all."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m <tool> ...`` with the interpreter running the tests (the venv's)."""
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240)


def test_ruff_finds_nothing() -> None:
    done = _run("ruff", "check", "--no-cache", "server", "tests", "bench")
    assert done.returncode == 0, f"ruff check found something:\n{done.stdout}{done.stderr}"


def test_mypy_finds_nothing() -> None:
    done = _run("mypy", "server")
    assert done.returncode == 0, f"mypy server found something:\n{done.stdout}{done.stderr}"


def test_ruff_can_fail(tmp_path: Path) -> None:
    """The same settings report an unused import and an unsorted import block."""
    (tmp_path / "bad.py").write_text("import sys\nimport os\n")
    done = _run("ruff", "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), "bad.py",
                cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "F401" in done.stdout and "I001" in done.stdout, done.stdout


def test_mypy_can_fail(tmp_path: Path) -> None:
    """The same settings report a wrong type and a ``type: ignore`` that ignores nothing."""
    (tmp_path / "bad.py").write_text('def f(x: int) -> int:\n    return x\n\n\nf("1")\n'
                                     "y: int = 1  # type: ignore[assignment]\n")
    done = _run("mypy", "--config-file", str(ROOT / "setup.cfg"), "--cache-dir", str(tmp_path / "cache"),
                "bad.py", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[arg-type]" in done.stdout and "[unused-ignore]" in done.stdout, done.stdout
