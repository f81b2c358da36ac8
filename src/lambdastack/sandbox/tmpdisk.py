"""An environment's /tmp on disk: an ext4 filesystem of exactly EphemeralStorage MB.

On Lambda /tmp is storage, not memory: a 128 MB function may fill a 512 MB /tmp. A tmpfs
would charge every byte to the environment's memory cgroup, so /tmp is a sparse image file
in the data directory (it takes disk only as it is written), attached to a loop device and
mounted as a detached mount (`fsmount`) that the environment attaches at /tmp.

Nothing outlives the environment, even when the server is killed: the image file is
unlinked as soon as its loop device holds it, the loop device clears itself when its last
user (the mount) goes (LO_FLAGS_AUTOCLEAR), and the mount lives only in the environment's
mount namespace.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import subprocess

from lambdastack.sandbox import libc

LOOP_CTL_GET_FREE = 0x4C82
LOOP_CONFIGURE = 0x4C0A
LO_FLAGS_AUTOCLEAR = 4
# struct loop_config: fd, block_size, then struct loop_info64 (232 bytes), then 64 reserved bytes.
_LOOP_INFO64 = struct.Struct("=QQQQQIIII64s64s32sQQ")
_LOOP_INFO64_FLAGS_OFFSET = 52


def _free_loop_device(path: str) -> "tuple[int, int]":
    """A loop device set up on `path` (which is unlinked), clearing itself once unused."""
    image = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        info = bytearray(_LOOP_INFO64.size)
        struct.pack_into("=I", info, _LOOP_INFO64_FLAGS_OFFSET, LO_FLAGS_AUTOCLEAR)
        config = struct.pack("=II", image, 0) + bytes(info) + b"\0" * 64
        for attempt in range(8):
            with open("/dev/loop-control", "rb") as control:
                number = fcntl.ioctl(control, LOOP_CTL_GET_FREE)
            loop = os.open("/dev/loop%d" % number, os.O_RDWR | os.O_CLOEXEC)
            try:
                fcntl.ioctl(loop, LOOP_CONFIGURE, config)
                return loop, number
            except OSError as e:
                os.close(loop)
                if e.errno != errno.EBUSY or attempt == 7:
                    raise  # EBUSY: another process took that device first
        raise AssertionError("unreachable")
    finally:
        os.close(image)
        os.unlink(path)


BLOCK = 4096


def make_image(path: str, blocks: int) -> None:
    """A sparse file holding an empty ext4 of `blocks` 4 KB blocks: no journal (nothing in /tmp
    survives a crash anyway), no reserved blocks (all of it is the function's)."""
    with open(path, "wb") as f:
        f.truncate(blocks * BLOCK)
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-b", str(BLOCK), "-O", "^has_journal", "-m", "0", "-E",
         "lazy_itable_init=1,nodiscard", path],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def usable_blocks(mount: int) -> int:
    """How many blocks a mounted image gives its files: its size less what ext4 keeps for itself
    (metadata, and the clusters it reserves so that delayed allocation never fails)."""
    return os.statvfs("/proc/self/fd/%d" % mount).f_bavail


def mount_image(path: str) -> int:
    """Attach the image at `path` and return a detached, writable mount of it (mode 1777).

    The image file is unlinked: from here on only the mount keeps it.
    """
    loop, number = _free_loop_device(path)
    try:
        mount = libc.fsmount_new("ext4", {"source": "/dev/loop%d" % number, "noinit_itable": None},
                                 libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV)
    finally:
        os.close(loop)  # the mount holds the device now; when the mount goes, so does the device
    root = "/proc/self/fd/%d" % mount
    os.chmod(root, 0o1777)
    os.rmdir(root + "/lost+found")  # a function finds its /tmp empty, as on Lambda
    return mount
