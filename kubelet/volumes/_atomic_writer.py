"""Atomic updates of projected volume content (kubelet's AtomicWriter).

A configMap, secret, downwardAPI or projected volume is written so that a
reader never sees half an update:

    <volume>/..2024_05_01_12_00_00.1234567/   the payload, one directory per version
    <volume>/..data -> ..2024_05_01_12_00_00.1234567
    <volume>/<key>  -> ..data/<key>             what users open (first path component)

An update writes the new payload into a fresh timestamped directory, points
`..data_tmp` at it and renames that over `..data` - one rename(2), so every
reader sees either the old files or the new ones - then adds the
user-visible links of new keys, removes the links of keys that are gone
and deletes the old directory. When nothing changed (same paths, bytes and
modes) nothing is written. A crash between steps leaves either the old or
the new version complete behind `..data`; leftovers (`..data_tmp`, stale
timestamped directories) are cleared by the next write, changed or not.

Paths are validated first: relative, no `..` element, not starting with
`..`, each element at most 255 bytes; a bad path is a ValueError naming it.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from api import Clock, RealClock

DATA_DIR = "..data"
DATA_DIR_TMP = "..data_tmp"
MAX_PATH_LENGTH = 4096
MAX_FILE_NAME_LENGTH = 255


@dataclass(frozen=True)
class FileProjection:
    data: bytes
    mode: int


def validate_path(path: str) -> str:
    """The cleaned relative path, or ValueError."""
    if not path:
        raise ValueError("invalid path: must not be empty")
    if len(path.encode()) > MAX_PATH_LENGTH:
        raise ValueError(f"invalid path {path!r}: must be less than or equal to {MAX_PATH_LENGTH} characters")
    if os.path.isabs(path):
        raise ValueError(f"invalid path {path!r}: must be relative path")
    parts = path.split("/")
    if ".." in parts:
        raise ValueError(f"invalid path {path!r}: must not contain '..'")
    if path.startswith(".."):
        raise ValueError(f"invalid path {path!r}: must not start with '..'")
    for part in parts:
        if len(part.encode()) > MAX_FILE_NAME_LENGTH:
            raise ValueError(f"invalid path {path!r}: each path element must be less than or equal to "
                             f"{MAX_FILE_NAME_LENGTH} characters")
    cleaned = os.path.normpath(path)
    if cleaned in (".", ""):
        raise ValueError(f"invalid path {path!r}: must name a file")
    return cleaned


class AtomicWriter:
    def __init__(self, target_dir: Path, clock: Clock | None = None) -> None:
        self.target_dir = target_dir
        self.clock = clock or RealClock()

    def current_dir(self) -> Path | None:
        """The timestamped directory `..data` points at, if any."""
        link = self.target_dir / DATA_DIR
        if not link.is_symlink():
            return None
        return self.target_dir / os.readlink(link)

    def write(self, payload: Mapping[str, FileProjection], *, group: int | None = None) -> bool:
        """Make the volume hold exactly `payload`; True if anything was written.

        `group` (the pod's fsGroup) owns the files, which then also get
        group read permission, as Kubernetes' volume ownership does."""
        clean: dict[str, FileProjection] = {}
        for path, proj in payload.items():
            mode = proj.mode | (0o440 if group is not None else 0)
            clean[validate_path(path)] = FileProjection(proj.data, mode & 0o7777)
        old_dir = self.current_dir()
        changed = old_dir is None or not old_dir.is_dir() or self._differs(old_dir, clean, group)
        if changed:
            new_dir = self._new_timestamp_dir()
            self._write_payload(new_dir, clean, group)
            tmp_link = self.target_dir / DATA_DIR_TMP
            if tmp_link.is_symlink() or tmp_link.exists():
                tmp_link.unlink()
            os.symlink(new_dir.name, tmp_link)
            os.replace(tmp_link, self.target_dir / DATA_DIR)
        self._sync_user_visible(clean)
        self._remove_leftovers()
        return changed

    # ------------------------------------------------------------ steps

    def _differs(self, old_dir: Path, payload: Mapping[str, FileProjection], group: int | None) -> bool:
        existing: set[str] = set()
        for dirpath, _dirs, files in os.walk(old_dir):
            for name in files:
                existing.add(os.path.relpath(os.path.join(dirpath, name), old_dir))
        if existing != set(payload):
            return True
        for path, proj in payload.items():
            st = os.lstat(old_dir / path)
            if stat.S_IMODE(st.st_mode) != proj.mode or (group is not None and st.st_gid != group):
                return True
            if (old_dir / path).read_bytes() != proj.data:
                return True
        return False

    def _new_timestamp_dir(self) -> Path:
        prefix = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime(self.clock.now()))
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=self.target_dir))
        os.chmod(path, 0o755)  # noqa: S103 - readable by every container user, as Kubernetes
        return path

    @staticmethod
    def _write_payload(ts_dir: Path, payload: Mapping[str, FileProjection], group: int | None) -> None:
        for path, proj in payload.items():
            target = ts_dir / path
            parent = target.parent
            if parent != ts_dir:
                parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                view = memoryview(proj.data)
                while view:
                    view = view[os.write(fd, view):]
                if group is not None:
                    os.fchown(fd, -1, group)
                os.fchmod(fd, proj.mode)
            finally:
                os.close(fd)

    def _sync_user_visible(self, payload: Mapping[str, FileProjection]) -> None:
        tops = {path.split("/", 1)[0] for path in payload}
        for top in sorted(tops):
            visible = self.target_dir / top
            if not visible.is_symlink() and not visible.exists():
                os.symlink(f"{DATA_DIR}/{top}", visible)
        for entry in os.scandir(self.target_dir):
            if entry.name.startswith("..") or entry.name in tops:
                continue
            if entry.is_symlink() and os.readlink(entry.path).startswith(f"{DATA_DIR}/"):
                os.unlink(entry.path)

    def _remove_leftovers(self) -> None:
        """Payload directories `..data` does not point at, and a `..data_tmp`
        link an interrupted write left behind."""
        tmp_link = self.target_dir / DATA_DIR_TMP
        if tmp_link.is_symlink():
            tmp_link.unlink()
        current = self.current_dir()
        for entry in os.scandir(self.target_dir):
            if entry.name.startswith("..") and entry.name not in (DATA_DIR, DATA_DIR_TMP) and \
                    entry.is_dir(follow_symlinks=False) and (current is None or entry.name != current.name):
                shutil.rmtree(entry.path)
