"""Shared libraries that functions and layers ship are found by name, as on Lambda.

Lambda starts its runtime with LD_LIBRARY_PATH covering /var/task, /var/task/lib and
/opt/lib, so `ctypes.CDLL("libfoo.so")` (or an extension module linked against a library
shipped next to it) finds them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import create_function, invoke, make_zip

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc builds the test libraries")

LOADS_BY_NAME = (
    "import ctypes, os\n"
    "def handler(event, context):\n"
    "    lib = ctypes.CDLL(event['library'])\n"
    "    lib.answer.restype = ctypes.c_int\n"
    "    return {'answer': lib.answer(), 'type': os.environ['AWS_LAMBDA_INITIALIZATION_TYPE']}\n"
)


def shared_library(tmp_path: Path, name: str, value: int) -> bytes:
    source = tmp_path / f"{name}.c"
    source.write_text(f"int answer(void) {{ return {value}; }}\n")
    output = tmp_path / f"lib{name}.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(output), str(source)], check=True)
    return output.read_bytes()


def test_a_library_in_the_code_package_is_found_by_name(plain_lam: Any, tmp_path: Path) -> None:
    library = shared_library(tmp_path, "taskfoo", 41)
    files: dict[str, str | bytes] = {"app.py": LOADS_BY_NAME, "lib/libtaskfoo.so": library}
    name = create_function(plain_lam, files=files)
    r = invoke(plain_lam, name, {"library": "libtaskfoo.so"})
    assert r.function_error is None, r.payload
    assert r.result == {"answer": 41, "type": "on-demand"}


def test_a_library_in_a_layer_is_found_by_name(plain_lam: Any, tmp_path: Path) -> None:
    content = make_zip({"lib/liblayerbar.so": shared_library(tmp_path, "layerbar", 42)})
    layer = plain_lam.publish_layer_version(LayerName="native", Content={"ZipFile": content})["LayerVersionArn"]
    name = create_function(plain_lam, LOADS_BY_NAME, Layers=[layer])
    r = invoke(plain_lam, name, {"library": "liblayerbar.so"})
    assert r.function_error is None, r.payload
    assert r.result["answer"] == 42
