"""The add-in's JavaScript, tested with the real toolchain: Node's test runner (against a live
server, and against harness servers the tests start), and functions.json regenerated from the JSDoc
by custom-functions-metadata plus the add-in's one documented post-step."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.live import ROOT

ADDIN = ROOT / "excel_addin"
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


def test_node_functions_against_a_live_server(live):
    server, key = live
    env = {**os.environ, "SCOREBRIDGE_TEST_URL": server.url, "SCOREBRIDGE_TEST_KEY": key}
    proc = subprocess.run(["node", "--test", "--test-reporter=spec", "tests/"], cwd=ADDIN,
                          env=env, capture_output=True, text=True, timeout=600)
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "fail 0" in proc.stdout


def test_functions_json_is_generated_from_the_jsdoc(tmp_path):
    if not (ADDIN / "node_modules" / ".bin" / "custom-functions-metadata").exists():
        pytest.skip("run `make test` (npm ci in excel_addin) first")
    out = tmp_path / "functions.json"
    subprocess.run([str(ADDIN / "node_modules/.bin/custom-functions-metadata"), "generate",
                    "src/functions.js", str(out)], cwd=ADDIN, check=True, capture_output=True,
                   timeout=120)
    generated = json.loads(out.read_text())
    # the generator has no tag for it (Microsoft documents it for hand-written metadata only)
    assert "allowErrorForDataTypeAny" not in generated
    subprocess.run(["node", "tools/finish_metadata.mjs", str(out)], cwd=ADDIN, check=True,
                   capture_output=True, timeout=60)
    finished = json.loads(out.read_text())
    assert finished == json.loads((ADDIN / "src/functions.json").read_text())
    assert finished["allowErrorForDataTypeAny"] is True
    assert finished["allowCustomDataForDataTypeAny"] is True
    assert {k: v for k, v in finished.items() if k != "allowErrorForDataTypeAny"} == generated
    ids = [f["id"] for f in finished["functions"]]
    assert ids == ["PREDICT", "PREDICT_PROBA", "EXPLAIN", "MODELS", "MODEL_INFO", "FEATURES"]
    streaming = [f["id"] for f in finished["functions"] if f.get("options", {}).get("stream")]
    assert streaming == ["MODELS", "MODEL_INFO"]
    assert "tools/finish_metadata.mjs" in json.loads(
        (ADDIN / "package.json").read_text())["scripts"]["metadata"]
