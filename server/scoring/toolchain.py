"""The machine's C compiler: the native trees and the explanation tables compile with it."""
from __future__ import annotations

import shutil


def toolchain() -> str | None:
    """gcc or clang, if this machine has one."""
    for name in ("gcc", "clang"):
        if shutil.which(name):
            return name
    return None
