"""Shared file systems (`FileSystemConfigs`): an EFS access point ARN mapped to a host directory
by `serve --file-system`, mounted read-write under /mnt/ in every environment of the functions
that name it, owned as the access point's POSIX user; Lambda's validation and errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import DEFAULT_RUNTIME, ROLE, Server, create_function, invoke_ok, python_zip, unique

ARN = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/fsap-0123456789abcdef0"
UNKNOWN = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/fsap-fedcba98765432100"
VPC = {"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123456789abcdef0"]}
MOUNT = {"Arn": ARN, "LocalMountPath": "/mnt/shared"}

WRITER = '''
import os

def handler(event, context):
    path = "/mnt/shared/" + event["name"]
    with open(path, "w") as f:
        f.write(event["text"])
    st = os.stat(path)
    return {"uid": st.st_uid, "me": os.getuid()}
'''

READER = '''
import os, time, uuid

SEEN = []  # survives between invocations of a warm environment
ENVIRONMENT = uuid.uuid4().hex

def handler(event, context):
    SEEN.append(1)
    time.sleep(event.get("sleep", 0))
    path = "/mnt/shared/" + event["name"]
    text = open(path).read() if os.path.exists(path) else None
    if event.get("which"):
        return {"text": text, "environment": ENVIRONMENT}
    return {"text": text, "invocations": len(SEEN)}
'''


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("efs") / "models"  # made by the server, owned by 1000:1000


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Iterator[Server]:
    if os.geteuid() != 0:
        pytest.skip("shared file systems need namespace isolation with root")
    server = Server(tmp_path_factory.mktemp("file-systems") / "data", "--file-system", f"{ARN}={shared_dir}").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lam(srv: Server) -> Any:
    return srv.client()


def error_of(call: Any, **params: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**params)
    r = info.value.response
    return r["Error"]["Code"], r["Error"]["Message"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_two_functions_share_files_through_one_file_system(srv: Server, lam: Any, shared_dir: Path) -> None:
    writer = create_function(lam, WRITER, VpcConfig=VPC, FileSystemConfigs=[MOUNT])
    reader = create_function(lam, READER, VpcConfig=VPC, FileSystemConfigs=[MOUNT])
    config = lam.get_function_configuration(FunctionName=writer)
    assert config["FileSystemConfigs"] == [MOUNT]
    assert config["VpcConfig"]["SubnetIds"] == VPC["SubnetIds"]
    assert config["VpcConfig"]["SecurityGroupIds"] == VPC["SecurityGroupIds"]
    name = unique("file")

    # The reader's environment starts before the file exists and stays warm.
    assert invoke_ok(lam, reader, {"name": name}) == {"text": None, "invocations": 1}
    written = invoke_ok(lam, writer, {"name": name, "text": "first"})
    # Inside, the function owns what it wrote; on the host, the access point's user does.
    assert written["uid"] == written["me"]
    assert (shared_dir / name).read_text() == "first"
    assert ((shared_dir / name).stat().st_uid, (shared_dir / name).stat().st_gid) == (1000, 1000)
    assert shared_dir.stat().st_uid == 1000
    assert invoke_ok(lam, reader, {"name": name}) == {"text": "first", "invocations": 2}
    invoke_ok(lam, writer, {"name": name, "text": "second"})
    assert invoke_ok(lam, reader, {"name": name}) == {"text": "second", "invocations": 3}
    # Two environments of the reader at once: both see the file.
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda _: invoke_ok(lam, reader, {"name": name, "sleep": 1, "which": True}), range(2)))
    assert [r["text"] for r in both] == ["second", "second"]
    assert both[0]["environment"] != both[1]["environment"]

    # After a restart, new environments see what was written before.
    srv.stop()
    srv.start()
    assert invoke_ok(lam, reader, {"name": name}) == {"text": "second", "invocations": 1}
    invoke_ok(lam, writer, {"name": name, "text": "third"})
    assert invoke_ok(lam, reader, {"name": name}) == {"text": "third", "invocations": 2}


def test_a_function_without_a_file_system_does_not_see_it(lam: Any) -> None:
    plain = create_function(lam, "import os\n\ndef handler(event, context):\n    return os.listdir('/mnt')\n")
    assert invoke_ok(lam, plain, {}) == []


def test_lambdas_validation(lam: Any) -> None:
    def create(**config: Any) -> tuple[str, str, int]:
        return error_of(lam.create_function, FunctionName=unique(), Runtime=DEFAULT_RUNTIME, Role=ROLE,
                        Handler="app.handler", Code={"ZipFile": python_zip("x = 1\n")}, **config)

    for path in ("/tmp/shared", "/mnt", "/mnt/", "/mnt/a/b", "mnt/shared"):
        code, message, status = create(VpcConfig=VPC, FileSystemConfigs=[{"Arn": ARN, "LocalMountPath": path}])
        assert (code, status) == ("ValidationException", 400), path
        assert message.endswith("Member must satisfy regular expression pattern: /mnt/[a-zA-Z0-9-_.]+"), message
    assert create(VpcConfig=VPC, FileSystemConfigs=[{"Arn": UNKNOWN, "LocalMountPath": "/mnt/x"}]) == (
        "InvalidParameterValueException",
        f"The file system access point {UNKNOWN} is not known to this lambdastack server: map it to a host "
        f"directory with lambdastack serve --file-system {UNKNOWN}=DIR", 400)
    assert create(FileSystemConfigs=[MOUNT]) == (
        "InvalidParameterValueException", f"Function must be configured to execute in a VPC to reference access "
        f"point {ARN}", 400)
    code, _, status = create(VpcConfig=VPC, FileSystemConfigs=[
        {"Arn": "arn:aws:elasticfilesystem:us-east-1:000000000000:file-system/fs-0123", "LocalMountPath": "/mnt/x"}])
    assert (code, status) == ("ValidationException", 400)
    code, _, status = create(VpcConfig=VPC, FileSystemConfigs=[MOUNT, {"Arn": ARN, "LocalMountPath": "/mnt/y"}])
    assert (code, status) == ("ValidationException", 400)  # at most one
    assert create(VpcConfig=VPC, FileSystemConfigs=[MOUNT], SnapStart={"ApplyOn": "PublishedVersions"}) == (
        "InvalidParameterValueException", "EFS is not supported for SnapStart enabled functions.", 400)

    # On an existing function: the VPC cannot go while the access point is referenced.
    name = create_function(lam, VpcConfig=VPC, FileSystemConfigs=[MOUNT])
    assert error_of(lam.update_function_configuration, FunctionName=name,
                    VpcConfig={"SubnetIds": [], "SecurityGroupIds": []}) == (
        "InvalidParameterValueException",
        f"Function VPC configuration cannot be removed with access point {ARN} referenced.", 400)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    lam.update_function_configuration(FunctionName=name, FileSystemConfigs=[],
                                      VpcConfig={"SubnetIds": [], "SecurityGroupIds": []})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    config = lam.get_function_configuration(FunctionName=name)
    assert "FileSystemConfigs" not in config or config["FileSystemConfigs"] == []
    assert invoke_ok(lam, name, {"a": 1}) == {"a": 1}


def test_without_namespaces_the_invocation_fails_saying_why(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", "--isolation", "process", "--file-system",
                    f"{ARN}={tmp_path / 'shared'}").start()
    try:
        lam = server.client()
        name = create_function(lam, READER, VpcConfig=VPC, FileSystemConfigs=[MOUNT])
        with pytest.raises(ClientError) as info:
            invoke_ok(lam, name, {"name": "x"})
        error = info.value.response["Error"]
        assert (error["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
            "EFSMountFailureException", 403)
        assert error["Message"] == (f"The function could not mount the file system access point {ARN}: file "
                                    "systems need namespace isolation with root: this server runs with --isolation "
                                    "process")
    finally:
        server.stop()
