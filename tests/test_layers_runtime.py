"""Layers at run time: merged at /opt in order, importable, on PATH and LD_LIBRARY_PATH, within
Lambda's limits, surviving their own deletion, and stored once for every function."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import ROLE, Server, create_function, invoke, invoke_ok, make_zip, python_zip, unique
from test_engine_isolation_levels import unprivileged_server  # noqa: F401 (the engine tests' fixture)

PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"

PROBE = '''
import json, os, subprocess, sys

def handler(event, context):
    out = {}
    if "python" in event:  # a new interpreter, started by the function
        event["run"] = [sys.executable, "-c", event["python"]]
    for path in event.get("read", []):
        try:
            with open(path) as f:
                out[path] = f.read()
        except OSError as e:
            out[path] = "error: " + e.__class__.__name__
    if "import" in event:
        import importlib
        out["import"] = {m: getattr(importlib.import_module(m), "WHO", None) for m in event["import"]}
    if "run" in event:
        r = subprocess.run(event["run"], capture_output=True, text=True)
        out["run"] = r.stdout
    if "stat" in event:
        st = os.stat(event["stat"])
        out["stat"] = [st.st_ino, st.st_size]
    if "write" in event:
        try:
            open(event["write"], "w").close()
            out["write"] = "ok"
        except OSError as e:
            out["write"] = e.__class__.__name__
    if "listdir" in event:
        out["listdir"] = sorted(os.listdir(event["listdir"]))
    if "ctypes" in event:
        import ctypes
        out["ctypes"] = ctypes.CDLL(event["ctypes"]).answer()
    out["env"] = {k: os.environ.get(k) for k in ("PATH", "LD_LIBRARY_PATH")}
    return out
'''


def publish(lam: Any, files: dict[str, str | bytes], modes: dict[str, int] | None = None,
            name: str | None = None) -> dict[str, Any]:
    return dict(lam.publish_layer_version(LayerName=name or unique("layer"),
                                          Content={"ZipFile": make_zip(files, modes)}))


def error_of(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


# -- merging, in order -----------------------------------------------------------------------------


def test_later_layers_override_earlier_ones(plain_lam: Any) -> None:
    lam = plain_lam
    first = publish(lam, {"same.txt": "first", "only-first.txt": "1", "python/who.py": "WHO = 'first'\n"})
    second = publish(lam, {"same.txt": "second", "only-second.txt": "2"})
    third = publish(lam, {"same.txt": "third", "python/who.py": "WHO = 'third'\n"})
    arns = [first["LayerVersionArn"], second["LayerVersionArn"], third["LayerVersionArn"]]
    name = create_function(lam, PROBE, Layers=arns)
    event = {"read": ["/opt/same.txt", "/opt/only-first.txt", "/opt/only-second.txt"], "import": ["who"],
             "write": "/opt/new.txt", "listdir": "/opt"}
    r = invoke_ok(lam, name, event)
    assert r["/opt/same.txt"] == "third"  # the last layer wins
    assert (r["/opt/only-first.txt"], r["/opt/only-second.txt"]) == ("1", "2")
    assert r["import"] == {"who": "third"}
    assert r["listdir"] == ["only-first.txt", "only-second.txt", "python", "same.txt"]
    assert r["write"] in ("OSError", "PermissionError")  # read-only
    # Order is the function's: reversed, the first layer wins.
    lam.update_function_configuration(FunctionName=name, Layers=list(reversed(arns)))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    r = invoke_ok(lam, name, {"read": ["/opt/same.txt"], "import": ["who"]})
    assert (r["/opt/same.txt"], r["import"]) == ("first", {"who": "first"})
    # Without layers, /opt is empty.
    lam.update_function_configuration(FunctionName=name, Layers=[])
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert invoke_ok(lam, name, {"listdir": "/opt"})["listdir"] == []


def test_python_packages_from_opt_python_and_site_packages(plain_lam: Any) -> None:
    lam = plain_lam
    layer = publish(lam, {
        "python/plain_mod.py": "WHO = 'opt/python'\n",
        f"python/lib/{PY}/site-packages/site_pkg/__init__.py": "WHO = 'site-packages'\n",
    })
    source = ("import plain_mod, site_pkg\n"
              "def handler(event, context):\n"
              "    return [plain_mod.WHO, site_pkg.WHO, site_pkg.__file__]\n")
    name = create_function(lam, source, Layers=[layer["LayerVersionArn"]])
    assert invoke_ok(lam, name) == ["opt/python", "site-packages",
                                    f"/opt/python/lib/{PY}/site-packages/site_pkg/__init__.py"]


def test_function_code_comes_before_its_layers(plain_lam: Any) -> None:
    lam = plain_lam
    layer = publish(lam, {"python/shadowed.py": "WHO = 'layer'\n"})
    files = {"app.py": "import shadowed\ndef handler(e, c):\n    return shadowed.WHO\n",
             "shadowed.py": "WHO = 'function'\n"}
    name = create_function(lam, files=files, Layers=[layer["LayerVersionArn"]])
    assert invoke_ok(lam, name) == "function"


def test_programs_in_opt_bin_are_on_the_path(plain_lam: Any) -> None:
    lam = plain_lam
    layer = publish(lam, {"bin/greet": "#!/bin/sh\necho hello from a layer\n"}, {"bin/greet": 0o755})
    name = create_function(lam, PROBE, Layers=[layer["LayerVersionArn"]])
    r = invoke_ok(lam, name, {"run": ["greet"]})
    assert r["run"] == "hello from a layer\n"
    assert r["env"]["PATH"].split(":")[-1] == "/opt/bin"
    assert "/opt/lib" in r["env"]["LD_LIBRARY_PATH"].split(":")


@pytest.fixture
def libanswer(tmp_path: Path) -> bytes:
    """A shared object exporting `int answer(void)`, built with the host's C compiler."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler on this host (scripts/test installs gcc)")
    source = tmp_path / "answer.c"
    source.write_text("int answer(void) { return 42; }\n")
    library = tmp_path / "libanswer.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(source)], check=True, timeout=60)
    return library.read_bytes()


def test_native_library_in_opt_lib(plain_lam: Any, libanswer: bytes) -> None:
    lam = plain_lam
    layer = publish(lam, {"lib/libanswer.so": libanswer}, {"lib/libanswer.so": 0o755})
    name = create_function(lam, PROBE, Layers=[layer["LayerVersionArn"]])
    assert invoke_ok(lam, name, {"ctypes": "/opt/lib/libanswer.so"})["ctypes"] == 42
    # A program the function starts finds it by name, through LD_LIBRARY_PATH's /opt/lib.
    loader = "import ctypes; print(ctypes.CDLL('libanswer.so').answer())"
    r = invoke_ok(lam, name, {"python": loader})
    assert r["run"] == "42\n"


# -- limits -----------------------------------------------------------------------------------------


def test_five_layers_at_most(plain_lam: Any) -> None:
    lam = plain_lam
    arns = [publish(lam, {f"layer{i}.txt": str(i)})["LayerVersionArn"] for i in range(6)]
    name = create_function(lam, PROBE, Layers=arns[:5])
    r = invoke_ok(lam, name, {"listdir": "/opt"})
    assert r["listdir"] == [f"layer{i}.txt" for i in range(5)]
    code, message = error_of(lam.update_function_configuration, FunctionName=name, Layers=arns)
    assert (code, message) == ("InvalidParameterValueException", "Cannot reference more than 5 layers.")
    code, message = error_of(lam.create_function, FunctionName=unique(), Runtime=PY, Role=ROLE,
                             Handler="app.handler", Code={"ZipFile": python_zip(PROBE)}, Layers=arns)
    assert (code, message) == ("InvalidParameterValueException", "Cannot reference more than 5 layers.")


def big_zip(size: int) -> bytes:
    """A package that unzips to `size` bytes but compresses well (a random block, repeated)."""
    block = os.urandom(4096)
    return make_zip({"big.bin": block * (size // len(block))})


def test_function_and_layers_unzip_to_250_mb_at_most(server: Server, plain_lam: Any) -> None:
    lam = plain_lam
    size = 132 * 1024 * 1024  # two of these are more than 262,144,000 bytes
    first = dict(lam.publish_layer_version(LayerName=unique("big"), Content={"ZipFile": big_zip(size)}))
    second = dict(lam.publish_layer_version(LayerName=unique("big"), Content={"ZipFile": big_zip(size)}))
    arns = [first["LayerVersionArn"], second["LayerVersionArn"]]
    name = create_function(lam, PROBE, Layers=arns[:1])
    assert invoke_ok(lam, name, {"stat": "/opt/big.bin"})["stat"][1] == size
    code, message = error_of(lam.update_function_configuration, FunctionName=name, Layers=arns)
    assert code == "InvalidParameterValueException"
    assert message.startswith(
        "Function code combined with layers exceeds the maximum allowed size of 262144000 bytes. The actual size is "
    )
    actual = int(message.rsplit(" ", 2)[-2])
    assert actual > 2 * size
    code, _ = error_of(lam.create_function, FunctionName=unique(), Runtime=PY, Role=ROLE, Handler="app.handler",
                       Code={"ZipFile": python_zip(PROBE)}, Layers=arns)
    assert code == "InvalidParameterValueException"
    # New code that would push the function with its layer past the limit is refused too.
    code, message = error_of(lam.update_function_code, FunctionName=name, ZipFile=big_zip(size))
    assert code == "InvalidParameterValueException" and "combined with layers" in message
    assert invoke_ok(lam, name, {"stat": "/opt/big.bin"})["stat"][1] == size  # unchanged
    lam.delete_function(FunctionName=name)
    for published in (first, second):
        lam.delete_layer_version(LayerName=published["LayerArn"], VersionNumber=published["Version"])


# -- lifetime and sharing -------------------------------------------------------------------------


def test_deleting_an_attached_layer_version_breaks_nothing(server: Server, plain_lam: Any) -> None:
    lam = plain_lam
    package = make_zip({"python/kept.py": "WHO = 'still here'\n"})
    sha = hashlib.sha256(package).hexdigest()
    layer = dict(lam.publish_layer_version(LayerName=unique("layer"), Content={"ZipFile": package}))
    name = create_function(lam, PROBE, Layers=[layer["LayerVersionArn"]])
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.delete_layer_version(LayerName=layer["LayerArn"], VersionNumber=layer["Version"])
    assert lam.list_layer_versions(LayerName=layer["LayerArn"])["LayerVersions"] == []
    # A change of configuration makes new environments: they still get the layer.
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"AFTER": "delete"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert invoke_ok(lam, name, {"import": ["kept"]})["import"] == {"kept": "still here"}
    assert invoke_ok(lam, f"{name}:{version}", {"import": ["kept"]})["import"] == {"kept": "still here"}
    conf = lam.get_function_configuration(FunctionName=name)
    assert conf["Layers"] == [{"Arn": layer["LayerVersionArn"], "CodeSize": len(package)}]
    # The deleted version cannot be attached anew, but the function keeps it through other changes.
    other = create_function(lam, PROBE)
    code, _ = error_of(lam.update_function_configuration, FunctionName=other, Layers=[layer["LayerVersionArn"]])
    assert code == "InvalidParameterValueException"
    lam.update_function_configuration(FunctionName=name, Timeout=5)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert invoke_ok(lam, name, {"import": ["kept"]})["import"] == {"kept": "still here"}
    assert (server.data_dir / "code" / sha).is_dir()
    # Once no function version uses it any more, its content leaves the disk.
    lam.delete_function(FunctionName=name)
    assert not (server.data_dir / "code" / sha).exists()


def test_one_copy_on_disk_for_every_function(server: Server, plain_lam: Any) -> None:
    lam = plain_lam
    marker = unique("marker")
    package = make_zip({"shared.txt": marker})
    sha = hashlib.sha256(package).hexdigest()
    layer = dict(lam.publish_layer_version(LayerName=unique("shared"), Content={"ZipFile": package}))
    names = [create_function(lam, PROBE, Layers=[layer["LayerVersionArn"]]) for _ in range(3)]
    inodes = set()
    for name in names:
        r = invoke_ok(lam, name, {"read": ["/opt/shared.txt"], "stat": "/opt/shared.txt"})
        assert r["/opt/shared.txt"] == marker
        inodes.add(r["stat"][0])
    host_file = server.data_dir / "code" / sha / "shared.txt"
    # Every environment sees the very file unpacked once on the host, not a copy of it.
    assert inodes == {host_file.stat().st_ino}
    copies = [p for p in server.data_dir.rglob("shared.txt") if p.read_text(errors="replace") == marker]
    assert copies == [host_file]


# -- other isolation levels ----------------------------------------------------------------------


def layered_function(lam: Any) -> str:
    first = publish(lam, {"same.txt": "first", "python/who.py": "WHO = 'first'\n"})
    second = publish(lam, {"same.txt": "second", "bin/greet": "#!/bin/sh\necho hi\n"}, {"bin/greet": 0o755})
    return create_function(lam, PROBE, Layers=[first["LayerVersionArn"], second["LayerVersionArn"]])


def test_layers_in_a_user_namespace(private_server: Any) -> None:
    server = private_server("--isolation", "userns")
    lam = server.client()
    name = layered_function(lam)
    r = invoke_ok(lam, name, {"read": ["/opt/same.txt"], "import": ["who"], "run": ["greet"], "write": "/opt/x"})
    assert (r["/opt/same.txt"], r["import"], r["run"]) == ("second", {"who": "first"}, "hi\n")
    assert r["write"] in ("OSError", "PermissionError")


@pytest.fixture
def open_data_dir() -> Iterator[Path]:
    parent = Path(tempfile.mkdtemp(prefix="lambdastack-layers-process-"))
    parent.chmod(0o755)
    yield parent / "data"
    shutil.rmtree(parent, ignore_errors=True)


def test_layers_without_mounts_under_process_isolation(private_server: Any, open_data_dir: Path) -> None:
    """Nothing is mounted: /opt is the host's. Programs the function starts find the layers'
    bin and lib through PATH and LD_LIBRARY_PATH, later layers first (README, Isolation)."""
    server = private_server("--isolation", "process", data_dir=open_data_dir)
    lam = server.client()
    name = layered_function(lam)
    r = invoke(lam, name, {"run": ["greet"], "read": ["/opt/same.txt"]})
    assert r.function_error is None, r.payload
    assert r.result["run"] == "hi\n"
    assert r.result["/opt/same.txt"].startswith("error")  # not mounted
    path = r.result["env"]["PATH"].split(":")
    layer_bins = [p for p in path if p.startswith(str(server.data_dir))]
    assert len(layer_bins) == 2 and path[:2] == layer_bins  # the later layer first


def test_layers_for_an_unprivileged_server(unprivileged_server: Server) -> None:  # noqa: F811
    """A server that is not root isolates with user namespaces; overlayfs works there too."""
    lam = unprivileged_server.client()
    name = layered_function(lam)
    r = invoke_ok(lam, name, {"read": ["/opt/same.txt"], "import": ["who"], "run": ["greet"], "write": "/opt/x"})
    assert (r["/opt/same.txt"], r["import"], r["run"]) == ("second", {"who": "first"}, "hi\n")
    assert r["write"] in ("OSError", "PermissionError")
