"""A root filesystem described as data, assembled from this machine's
installed Debian packages.

A Rootfs is a map from absolute path to an entry (directory, file copied
from the host, file with given content, symlink). Copying a host path copies
every symlink on the way as a symlink, so an image keeps Debian's layout:
`/lib64/ld-linux-x86-64.so.2` works because `/lib64 -> usr/lib64` and the
loader's own symlink come along. A binary brings the shared libraries `ldd`
names, and a package brings the files `dpkg -L` lists.

Nothing here touches the host: a missing file, a package that is not
installed or a binary `ldd` cannot resolve is an error that names it, raised
before any layer is written.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

# documentation is not needed to run anything
PACKAGE_EXCLUDES = ("/usr/share/doc/", "/usr/share/man/", "/usr/share/lintian/", "/usr/share/info/",
                    "/usr/share/bug/", "/usr/share/locale/")


class BuildError(RuntimeError):
    """An image could not be assembled from this machine's packages."""


@dataclass(frozen=True)
class Entry:
    kind: str                  # "dir", "file", "symlink"
    mode: int = 0o755
    source: str = ""           # host file to copy (kind "file")
    content: bytes | None = None
    target: str = ""           # symlink target
    uid: int = 0
    gid: int = 0

    def fingerprint(self) -> str:
        """What decides the bytes in the layer: the host file's identity, or the content itself."""
        if self.kind == "file" and self.content is None:
            st = os.stat(self.source)
            origin = f"{self.source}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
        elif self.content is not None:
            origin = hashlib.sha256(self.content).hexdigest()
        else:
            origin = self.target
        return f"{self.kind}:{self.mode:o}:{self.uid}:{self.gid}:{origin}"


def _norm(path: str) -> str:
    norm = os.path.normpath("/" + path.lstrip("/"))
    return "/" if norm == "/" else norm.rstrip("/")


class Rootfs:
    def __init__(self, host_root: str = "/") -> None:
        self.entries: dict[str, Entry] = {}
        self.host_root = host_root

    # --- primitives -------------------------------------------------------
    def _put(self, path: str, entry: Entry) -> None:
        path = _norm(path)
        existing = self.entries.get(path)
        if existing is not None and existing.kind != entry.kind and {existing.kind, entry.kind} & {"dir"}:
            raise BuildError(f"{path}: already a {existing.kind} in this image, cannot also be a {entry.kind}")
        self.entries[path] = entry

    def mkdir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        path = _norm(path)
        if path == "/":
            return
        self._parents(path)
        existing = self.entries.get(path)
        if existing is not None and existing.kind == "symlink":
            return    # e.g. /bin -> usr/bin: the directory already exists behind the link
        self._put(path, Entry("dir", mode, uid=uid, gid=gid))

    def _parents(self, path: str) -> None:
        parent = str(PurePosixPath(path).parent)
        if parent != "/" and parent not in self.entries:
            self.mkdir(parent)

    def write(self, path: str, content: bytes | str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
        data = content.encode() if isinstance(content, str) else content
        path = self.resolve(path)
        self._parents(path)
        self._put(path, Entry("file", mode, content=data, uid=uid, gid=gid))

    def symlink(self, path: str, target: str) -> None:
        path = self.resolve_parent(path)
        self._parents(path)
        self._put(path, Entry("symlink", 0o777, target=target))

    def resolve_parent(self, path: str) -> str:
        """`path` with the image's own directory symlinks in its parent resolved (/bin/sh -> /usr/bin/sh)."""
        path = _norm(path)
        parent = PurePosixPath(path).parent
        return _norm(f"{self.resolve(str(parent))}/{PurePosixPath(path).name}")

    def resolve(self, path: str, depth: int = 0) -> str:
        """Follow the image's symlinks in every component of `path`."""
        if depth > 40:
            raise BuildError(f"{path}: too many levels of symbolic links in the image")
        parts = PurePosixPath(_norm(path)).parts[1:]
        current = "/"
        for i, part in enumerate(parts):
            candidate = _norm(f"{current}/{part}")
            entry = self.entries.get(candidate)
            if entry is not None and entry.kind == "symlink":
                target = entry.target if entry.target.startswith("/") else f"{current}/{entry.target}"
                rest = "/".join(parts[i + 1:])
                return self.resolve(f"{target}/{rest}" if rest else target, depth + 1)
            current = candidate
        return current

    # --- from the host ----------------------------------------------------
    def _host(self, path: str) -> str:
        return os.path.join(self.host_root, path.lstrip("/"))

    def copy_host_path(self, path: str, *, follow_final: bool = True, depth: int = 0) -> str:
        """Copy `path` from the host with every symlink on the way; return the real path copied."""
        if depth > 40:
            raise BuildError(f"{path}: too many levels of symbolic links on the host")
        parts = PurePosixPath(_norm(path)).parts[1:]
        current = "/"
        for i, part in enumerate(parts):
            candidate = _norm(f"{current}/{part}")
            host = self._host(candidate)
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                raise BuildError(f"{path}: not found on this machine ({candidate} is missing)") from None
            last = i == len(parts) - 1
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(host)
                self._parents(candidate)
                self._put(candidate, Entry("symlink", 0o777, target=target))
                if last and not follow_final:
                    return candidate
                absolute = target if target.startswith("/") else f"{current}/{target}"
                rest = "/".join(parts[i + 1:])
                return self.copy_host_path(f"{absolute}/{rest}" if rest else absolute,
                                           follow_final=follow_final, depth=depth + 1)
            if last:
                if stat.S_ISDIR(st.st_mode):
                    self.mkdir(candidate, stat.S_IMODE(st.st_mode))
                elif stat.S_ISREG(st.st_mode):
                    self._parents(candidate)
                    self._put(candidate, Entry("file", stat.S_IMODE(st.st_mode), source=host))
                else:
                    raise BuildError(f"{candidate}: neither a file, a directory nor a symlink on this machine")
                return candidate
            if not stat.S_ISDIR(st.st_mode):
                raise BuildError(f"{path}: {candidate} is not a directory on this machine")
            if candidate not in self.entries:
                self.mkdir(candidate, stat.S_IMODE(st.st_mode))
            current = candidate
        return current

    def copy_tree(self, path: str, excludes: Iterable[str] = PACKAGE_EXCLUDES) -> None:
        """A host directory and everything under it."""
        real = self.copy_host_path(path)
        for dirpath, dirnames, filenames in os.walk(self._host(real)):
            relative = os.path.relpath(dirpath, self.host_root)
            rel = "/" if relative == "." else _norm(relative)
            for name in sorted(dirnames + filenames):
                child = _norm(f"{rel}/{name}")
                if not any(child.startswith(x) for x in excludes):
                    self.copy_host_path(child, follow_final=False)
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]

    def copy_binary(self, path: str) -> None:
        """An executable and the shared libraries it loads."""
        real = self.copy_host_path(path)
        for lib in shared_libraries(self._host(real)):
            self.copy_host_path(lib)

    def copy_package(self, package: str, excludes: Iterable[str] = PACKAGE_EXCLUDES,
                     prefixes: Iterable[str] = ("/",)) -> None:
        """The files an installed Debian package owns (dpkg -L), plus what its ELF files load."""
        files = package_files(package)
        wanted = [f for f in files if any(f.startswith(p) for p in prefixes)
                  and not any(f.startswith(x) for x in excludes)]
        for path in wanted:
            host = self._host(path)
            if os.path.isdir(host) and not os.path.islink(host):
                continue    # directories come with their files
            if not os.path.lexists(host):
                continue    # dpkg lists diversions and conffiles removed by the admin
            self.copy_host_path(path, follow_final=False)
            if os.path.isfile(host) and not os.path.islink(host) and _is_elf(host):
                for lib in shared_libraries(host):
                    self.copy_host_path(lib)

    def digest_input(self) -> str:
        """A hash of everything that decides this rootfs's layer bytes (the build cache key)."""
        h = hashlib.sha256()
        for path in sorted(self.entries):
            h.update(f"{path}\0{self.entries[path].fingerprint()}\n".encode())
        return h.hexdigest()


def _is_elf(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def shared_libraries(binary: str) -> list[str]:
    """The libraries `ldd` resolves for `binary`, the loader included; statically linked gives none."""
    proc = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    text = proc.stdout + proc.stderr
    if "not a dynamic executable" in text or "statically linked" in text:
        return []
    if proc.returncode != 0:
        raise BuildError(f"ldd {binary} failed: {text.strip()}")
    libs: list[str] = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if "=> not found" in line:
            raise BuildError(f"{binary}: shared library {line.split()[0]} is not installed on this machine")
        if "=>" in line:
            target = line.split("=>", 1)[1].strip().split(" (")[0].strip()
            if target.startswith("/"):
                libs.append(target)
        elif line.startswith("/"):
            libs.append(line.split(" (")[0])
    return libs


def package_files(package: str) -> list[str]:
    proc = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"Debian package {package!r} is not installed: apt-get install -y {package}")
    return [line for line in proc.stdout.splitlines() if line.startswith("/") and line != "/."]
