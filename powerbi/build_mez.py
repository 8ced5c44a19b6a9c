"""Build dist/ScoreBridge.mez byte for byte reproducibly: a flat zip of the connector's section
document, resources and icons, entries sorted, with fixed timestamps and permissions.

    python powerbi/build_mez.py [OUTPUT]
"""
from __future__ import annotations

import sys
import zipfile
from pathlib import Path

CONNECTOR = Path(__file__).resolve().parent / "connector"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
PACKED = ["ScoreBridge.pq", "resources.resx"] + [f"ScoreBridge{n}.png"
                                                  for n in (16, 20, 24, 32, 40, 48, 64)]


def build(output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(tmp, "w") as mez:
        for name in sorted(PACKED):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            mez.writestr(info, (CONNECTOR / name).read_bytes(), compresslevel=9)
    tmp.replace(output)
    return output


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else root / "dist" / "ScoreBridge.mez"))
