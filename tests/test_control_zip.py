"""Deployment packages: every unsafe or oversized zip is refused, and nothing of it is kept."""

from __future__ import annotations

import base64
import io
import os
import stat
import struct
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import ECHO, ROLE, Server, make_zip, unique
from shapecheck import checked

NOT_A_ZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."


@pytest.fixture
def lam(lam: Any) -> Iterator[Any]:
    with checked(lam):
        yield lam


def stored(server: Server) -> set[str]:
    """Every stored blob and every entry under the code directory of the server."""
    found: set[str] = set()
    for top in ("blobs", "code"):
        root = server.data_dir / top
        if root.is_dir():
            found.update(
                str(p.relative_to(server.data_dir))
                for p in root.rglob("*")
                if top == "code" or not p.is_dir()
            )
    return found


@pytest.fixture
def nothing_kept(server: Server) -> Iterator[None]:
    before = stored(server)
    yield
    assert stored(server) == before


def raw_zip(entries: Sequence[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for info, data in entries:
                z.writestr(info, data)
    return buf.getvalue()


def symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def zeros(name: str, megabytes: int) -> bytes:
    """A zip holding `megabytes` MB of zeros, built from one compressed megabyte repeated.

    After a full flush deflate output is byte-aligned and history-free, so the same
    compressed block can be repeated; building it costs milliseconds instead of seconds.
    """
    chunk = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    data = block * megabytes + zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(chunk, crc)
    size = megabytes << 20
    raw = name.encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size, len(raw), 0) + raw
    central = (
        struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), size, len(raw), 0, 0, 0, 0, 0, 0
        )
        + raw
    )
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    return local + data + central + end


def refused(lam: Any, data: bytes) -> str:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as info:
        lam.create_function(
            FunctionName=unique(),
            Runtime="python3.12",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": data},
        )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(info.value.response["Error"]["Message"])


@pytest.mark.usefixtures("nothing_kept")
@pytest.mark.parametrize(
    ("entries", "says"),
    [
        ([("../evil.py", b"x")], "points outside the deployment package"),
        ([("lib/../../evil.py", b"x")], "points outside the deployment package"),
        ([("..\\evil.py", b"x")], "points outside the deployment package"),
        ([("/etc/cron.d/evil", b"x")], "absolute path"),
        ([("C:\\evil.py", b"x")], "absolute path"),
        ([symlink("link", "../../etc/passwd")], "points outside the deployment package"),
        ([symlink("link", "/etc/passwd")], "points outside the deployment package"),
        # Each link stays inside on its own; followed through each other they leave the package.
        ([("deep/a/b/x", b""), symlink("deep/a/up", "../.."), symlink("out", "deep/a/up/..")], "outside"),
        ([symlink("loop", "loop")], "outside"),
        ([symlink("lib", "."), ("lib/app.py", b"x")], "lies under the symlink"),
        ([("app.py", b"a"), ("app.py", b"b")], "appears more than once"),
        ([("app.py", b"a"), ("./app.py", b"b")], "appears more than once"),
        ([("app.py", b"a"), ("app.py/x", b"b")], "lies under the file"),
    ],
)
def test_unsafe_entries_are_refused(lam: Any, entries: list[Any], says: str) -> None:
    message = refused(lam, raw_zip(entries))
    assert message.startswith("Could not unzip uploaded file.")
    assert says in message


@pytest.mark.usefixtures("nothing_kept")
def test_not_a_zip(lam: Any) -> None:
    for data in (b"definitely not a zip", make_zip({"app.py": ECHO})[:-30]):
        assert refused(lam, data) == NOT_A_ZIP
    name = unique()
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": ECHO})},
    )
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as info:
        lam.update_function_code(FunctionName=name, ZipFile=b"PK\x03\x04 broken")
    assert info.value.response["Error"]["Message"] == NOT_A_ZIP
    lam.delete_function(FunctionName=name)


@pytest.mark.usefixtures("nothing_kept")
def test_corrupt_entry_data(lam: Any) -> None:
    data = bytearray(make_zip({"app.py": ECHO * 50}))
    offset = data.index(b"app.py") + len(b"app.py") + 10  # inside the compressed data
    data[offset] ^= 0xFF
    assert refused(lam, bytes(data)) == NOT_A_ZIP


@pytest.mark.usefixtures("nothing_kept")
def test_unzipped_size_limit(lam: Any) -> None:
    # 300 MB of zeros: a small upload that would fill the disk.
    assert refused(lam, zeros("big.bin", 300)) == "Unzipped size must be smaller than 262144000 bytes"


@pytest.mark.usefixtures("nothing_kept")
def test_lying_headers_do_not_help(lam: Any) -> None:
    data = bytearray(zeros("big.bin", 40))
    # Claim the entry is tiny, in both the local header and the central directory.
    real = (40 << 20).to_bytes(4, "little")
    assert data.count(real) == 2
    data = bytearray(bytes(data).replace(real, (1000).to_bytes(4, "little")))
    assert refused(lam, bytes(data)).startswith("Could not unzip uploaded file.")


@pytest.mark.usefixtures("nothing_kept")
def test_compression_ratio_bomb(lam: Any) -> None:
    # 40 MB of zeros compress ~1000:1: within the size limit, but no code looks like that.
    message = refused(lam, zeros("pad.bin", 40))
    assert "zip bomb" in message


@pytest.mark.usefixtures("nothing_kept")
def test_too_many_entries(lam: Any) -> None:
    assert "100001 entries; at most 100000" in refused(lam, empty_entries(100_001))


def empty_entries(count: int) -> bytes:
    """A valid zip of `count` empty files, built directly (zipfile takes seconds for this)."""
    local, central = [], []
    offset = 0
    for i in range(count):
        name = f"f{i}".encode()
        header = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
        central.append(
            struct.pack(
                "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, offset
            )
            + name
        )
        local.append(header)
        offset += len(header)
    directory = b"".join(central)
    zip64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(directory), offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, offset + len(directory), 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(directory), offset, 0)
    return b"".join(local) + directory + zip64 + locator + end


@pytest.mark.usefixtures("nothing_kept")
def test_zipped_size_limits(lam: Any, server: Server) -> None:
    # Over 50 MB zipped, but the request still passes the front door: a package error.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("blob.bin", os.urandom(50 * 1024 * 1024 + 4096))
    big = buf.getvalue()
    assert "Zipped size must be smaller than 52428800 bytes" in refused(lam, big)
    # Far over: the request itself is refused before it is read.
    huge = b"0" * (72 * 1024 * 1024)
    r = requests.post(f"{server.url}/2015-03-31/functions", data=huge, timeout=60)
    assert r.status_code == 413
    assert r.headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"


def test_code_is_unpacked_once_with_safe_modes(lam: Any, server: Server) -> None:
    data = make_zip(
        {"app.py": ECHO, "bin/bootstrap": "#!/bin/sh\n", "pkg/__init__.py": "", "pkg/data.txt": "x"},
        modes={"bin/bootstrap": 0o700, "pkg/data.txt": 0o600},
    )
    data = raw_zip(
        [(info, z.read(info)) for z in [zipfile.ZipFile(io.BytesIO(data))] for info in z.infolist()]
        + [symlink("current", "pkg"), symlink("pkg/self.py", "../app.py")]
    )
    first = lam.create_function(
        FunctionName=unique(), Runtime="python3.12", Role=ROLE, Handler="app.handler", Code={"ZipFile": data}
    )
    lam.create_function(
        FunctionName=unique(), Runtime="python3.12", Role=ROLE, Handler="app.handler", Code={"ZipFile": data}
    )
    sha = base64.b64decode(first["CodeSha256"]).hex()
    root = server.data_dir / "code" / sha
    assert (server.data_dir / "blobs" / sha[:2] / sha).read_bytes() == data

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.lstat().st_mode)

    assert mode(root) == 0o755
    assert mode(root / "app.py") == 0o644
    assert mode(root / "bin") == 0o755
    assert mode(root / "bin" / "bootstrap") == 0o755
    assert mode(root / "pkg" / "data.txt") == 0o644
    assert (root / "app.py").read_text() == ECHO
    assert os.readlink(root / "current") == "pkg"
    assert (root / "pkg" / "self.py").read_text() == ECHO
    assert (root / "app.py").stat().st_uid == os.getuid()
