"""How much a directory tree takes on disk (`du -s`), for the shim's
writable layers and the kubelet's emptyDir limits."""

from __future__ import annotations

import os
from pathlib import Path


def disk_usage(path: Path) -> tuple[int, int]:
    """(bytes, inodes) under `path`, not following symlinks nor crossing
    into other filesystems; (0, 0) when it does not exist."""
    total = inodes = 0
    try:
        device = path.lstat().st_dev
    except OSError:
        return 0, 0
    stack = [str(path)]
    while stack:
        top = stack.pop()
        try:
            entries = list(os.scandir(top))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            inodes += 1
            total += st.st_blocks * 512
            if entry.is_dir(follow_symlinks=False) and st.st_dev == device:
                stack.append(entry.path)
    return total, inodes
