"""A small filesystem of its own for a data dir, so a test can fill it: a loop-mounted ext4 image, else tmpfs.

Mounting needs root (and, for ext4, a free loop device and mkfs.ext4 from e2fsprogs); where neither works the
test is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

MIB = 1024 * 1024


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def _mount_ext4(image: Path, target: Path, size_mib: int) -> str | None:
    """Mount a fresh ext4 image at target; None when done, else why not."""
    if shutil.which("mkfs.ext4") is None:
        return "mkfs.ext4 is not installed (e2fsprogs)"
    with open(image, "wb") as f:
        f.truncate(size_mib * MIB)
    # -m 0: no blocks reserved for root (the server runs as root here); small journal.
    made = _run("mkfs.ext4", "-q", "-F", "-m", "0", "-J", "size=1", str(image))
    if made.returncode != 0:
        return f"mkfs.ext4 failed: {made.stderr.strip()}"
    mounted = _run("mount", "-o", "loop", str(image), str(target))
    return None if mounted.returncode == 0 else f"loop mount failed: {mounted.stderr.strip()}"


def _mount_tmpfs(target: Path, size_mib: int) -> str | None:
    mounted = _run("mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0700", "tmpfs", str(target))
    return None if mounted.returncode == 0 else f"tmpfs mount failed: {mounted.stderr.strip()}"


def _unmount(target: Path) -> None:
    for _ in range(50):
        if _run("umount", str(target)).returncode == 0:
            return
        time.sleep(0.1)  # a server process may still be letting go of its files
    _run("umount", "-l", str(target))


@contextlib.contextmanager
def small_filesystem(
    target: Path, size_mib: int, *, kinds: tuple[str, ...] = ("ext4", "tmpfs")
) -> Iterator[str]:
    """Mount a filesystem of size_mib at target (created if missing) for the block; yields its kind."""
    if os.geteuid() != 0:
        pytest.skip("a full-disk test mounts a small filesystem, which needs root")
    target.mkdir(parents=True, exist_ok=True)
    image = target.parent / f"{target.name}.img"
    reasons = []
    for kind in kinds:
        reason = _mount_ext4(image, target, size_mib) if kind == "ext4" else _mount_tmpfs(target, size_mib)
        if reason is None:
            break
        reasons.append(reason)
    else:
        image.unlink(missing_ok=True)
        pytest.skip("no small filesystem could be mounted: " + "; ".join(reasons))
    try:
        yield kind
    finally:
        _unmount(target)
        image.unlink(missing_ok=True)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path: Path, *, leave: int = 0, chunk: int = MIB) -> int:
    """Write a filler file at path until the filesystem has at most `leave` bytes free; returns its size."""
    written = 0
    with open(path, "wb") as f:
        block = b"\0" * chunk
        while True:
            room = free_bytes(path.parent) - leave
            if room <= 0:
                break
            try:
                written += f.write(block[: min(chunk, room)])
                f.flush()
            except OSError:
                break
    return written


@contextlib.contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """The paths made immutable (`chattr +i`), which stops root too, for as long as the block runs; the test
    is skipped where the file system has no such attribute."""
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr is not installed")
    made: list[Path] = []
    try:
        for path in paths:
            if subprocess.run([chattr, "+i", str(path)], capture_output=True, check=False).returncode != 0:
                pytest.skip("this file system has no immutable attribute")
            made.append(path)
        yield
    finally:
        for path in made:
            subprocess.run([chattr, "-i", str(path)], check=True)
