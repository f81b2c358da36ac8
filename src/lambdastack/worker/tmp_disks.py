"""Disk-backed /tmp filesystems, made ahead of demand so that a cold start does not wait for one.

Each is a detached ext4 mount (sandbox/tmpdisk.py) of one EphemeralStorage size, handed to
an environment with its function's code when it is assigned. A few of each size in use are
kept ready (the default 512 MB first); a size not ready yet is made on the spot (about 7 ms).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import uuid
from pathlib import Path

from lambdastack.sandbox import tmpdisk

log = logging.getLogger("lambdastack.worker")

READY_PER_SIZE = 2
DEFAULT_SIZE_MB = 512


class TmpDisks:
    def __init__(self, folder: Path, ready_per_size: int = READY_PER_SIZE) -> None:
        self.folder = folder
        self.ready_per_size = ready_per_size
        self._ready: dict[int, list[int]] = {}  # size -> detached mounts
        # size -> image blocks that give exactly that many MB to files (ext4 keeps some for itself)
        self._blocks: dict[int, int] = {}
        self._filling: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @staticmethod
    def available() -> str | None:
        """Why this host cannot have disk-backed /tmp (None: it can)."""
        if os.geteuid() != 0:
            return "loop devices need root"
        if not os.path.exists("/dev/loop-control"):
            return "no /dev/loop-control"
        if shutil.which("mkfs.ext4") is None:
            return "no mkfs.ext4 (e2fsprogs)"
        return None

    def start(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)  # images of a server that died (never attached)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._refill(DEFAULT_SIZE_MB)

    def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for mounts in self._ready.values():
            for fd in mounts:
                os.close(fd)
        self._ready.clear()

    async def take(self, size_mb: int) -> int:
        """A detached mount of an empty /tmp of `size_mb` MB; the caller owns (and closes) it."""
        ready = self._ready.get(size_mb)
        self._refill(size_mb)
        if ready:
            return ready.pop()
        return await asyncio.to_thread(self._make, size_mb)

    def _make(self, size_mb: int) -> int:
        """A new /tmp whose files get exactly `size_mb` MB (a write past that fails with ENOSPC):
        the image is grown by what ext4 keeps for itself, measured on the first one of each size."""
        wanted = size_mb * 1024 * 1024 // tmpdisk.BLOCK
        blocks = self._blocks.get(size_mb, wanted)
        for _ in range(4):
            mount = self._mount_new(blocks)
            usable = tmpdisk.usable_blocks(mount)
            if usable == wanted:
                self._blocks[size_mb] = blocks
                return mount
            os.close(mount)
            blocks += wanted - usable
        raise OSError(f"could not size a /tmp of {size_mb} MB")

    def _mount_new(self, blocks: int) -> int:
        path = str(self.folder / f"{uuid.uuid4().hex}.img")
        try:
            tmpdisk.make_image(path, blocks)
            return tmpdisk.mount_image(path)  # unlinks the image
        except BaseException:
            if os.path.exists(path):
                os.unlink(path)
            raise

    def _refill(self, size_mb: int) -> None:
        if self._closed or size_mb in self._filling:
            return
        if len(self._ready.get(size_mb, ())) >= self.ready_per_size:
            return
        self._filling.add(size_mb)
        task = asyncio.get_running_loop().create_task(self._fill(size_mb))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(self, size_mb: int) -> None:
        try:
            ready = self._ready.setdefault(size_mb, [])
            while not self._closed and len(ready) < self.ready_per_size:
                try:
                    fd = await asyncio.to_thread(self._make, size_mb)
                except Exception as e:
                    log.warning("could not make a /tmp of %d MB ahead of demand: %s", size_mb, e)
                    return
                if self._closed:
                    os.close(fd)
                    return
                ready.append(fd)
        finally:
            self._filling.discard(size_mb)
