"""Container-image functions through the control plane: states, the refused combinations,
registries with and without credentials, tags and digests, indexes, shared roots, and
layers that try to write outside the root.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import image_builder as ib
import pytest
import requests
import runtimes_functions as fn
from helpers import ROLE, Server, invoke, unique


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    return plain_lam


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The conformance runtime in C, static: an image needs nothing else."""
    return fn.compile_c(fn.C, tmp_path_factory.mktemp("c"), static=True)


def static_layout(workdir: Path, binary: bytes, marker: str, architecture: str = "amd64",
                  extra: list[bytes] = ()) -> ib.Image:  # type: ignore[assignment]
    image = ib.Image(workdir, architecture=architecture, entrypoint=["/bootstrap"],
                     env=[f"GREETING={marker}"])  # a variable the C runtime reports
    image.add_layer(ib.layer([ib.file("bootstrap", binary, 0o755)]))
    for layer in extra:
        image.add_layer(layer)
    return image


def push_static(registry: ib.Registry, binary: bytes, workdir: Path, repository: str, tag: str, marker: str,
                **kw: Any) -> str:
    return registry.push(static_layout(workdir, binary, marker, **kw).write(), repository, tag)


def create(lam: Any, uri: str, **config: Any) -> str:
    name = unique("img")
    lam.create_function(FunctionName=name, Role=ROLE, PackageType="Image", Code={"ImageUri": uri}, **config)
    return name


def wait_settled(lam: Any, name: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        config = lam.get_function_configuration(FunctionName=name)
        if config["State"] != "Pending" and config["LastUpdateStatus"] != "InProgress":
            return config
        assert time.monotonic() < deadline, config
        time.sleep(0.2)


def marker_of(lam: Any, name: str, **params: Any) -> str:
    r = invoke(lam, name, {"op": "env"}, **params)
    assert r.function_error is None, r.payload
    return str(r.result["GREETING"])


def error_of(call: Any, **params: Any) -> tuple[str, str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call(**params)
    response = info.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def manifest_digest(registry: ib.Registry, repository: str, tag: str) -> str:
    r = requests.head(f"http://{registry.host}/v2/{repository}/manifests/{tag}",
                      headers={"Accept": f"{ib.OCI_MANIFEST}, {ib.OCI_INDEX}"}, timeout=10)
    return str(r.headers["Docker-Content-Digest"])


# ------------------------------------------------------------------ lifecycle


def test_create_is_pending_then_active_with_the_resolved_image(
    lam: Any, registry: ib.Registry, bootstrap: bytes, tmp_path: Path
) -> None:
    uri = push_static(registry, bootstrap, tmp_path / "a", "app/lifecycle", "v1", "one")
    name = unique("img")
    created = lam.create_function(FunctionName=name, Role=ROLE, PackageType="Image", Code={"ImageUri": uri},
                                  ImageConfig={"Command": ["ignored-by-the-c-runtime"]})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (created["State"], created["StateReasonCode"]) == ("Pending", "Creating")
    assert "LastUpdateStatus" not in created  # as AWS answers a create
    assert created["PackageType"] == "Image"
    assert "Runtime" not in created and "Handler" not in created
    assert created["ImageConfigResponse"] == {"ImageConfig": {"Command": ["ignored-by-the-c-runtime"]}}
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    got = lam.get_function(FunctionName=name)
    digest = manifest_digest(registry, "app/lifecycle", "v1")
    assert got["Code"] == {"RepositoryType": "ECR", "ImageUri": uri,
                           "ResolvedImageUri": f"{registry.host}/app/lifecycle@{digest}"}
    assert got["Configuration"]["CodeSha256"] == digest.split(":")[1]
    assert (got["Configuration"]["State"], got["Configuration"]["LastUpdateStatus"]) == ("Active", "Successful")
    assert marker_of(lam, name) == "one"


def test_invoking_a_pending_function_is_a_conflict(lam: Any) -> None:
    """A registry that never answers keeps the function Pending; Invoke says so with a 409."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        name = create(lam, f"127.0.0.1:{silent.getsockname()[1]}/app/slow:v1")
        code, message, status = error_of(lam.invoke, FunctionName=name, Payload=b"{}")
        assert (code, status) == ("ResourceConflictException", 409)
        assert message == ("The operation cannot be performed at this time. The function is currently in the "
                           "following state: Pending")
        assert lam.get_function_configuration(FunctionName=name)["State"] == "Pending"
    lam.delete_function(FunctionName=name)


def test_a_missing_image_is_refused_and_nothing_is_created(lam: Any, registry: ib.Registry) -> None:
    uri = f"{registry.host}/app/never-pushed:v1"
    name = unique("img")
    assert error_of(lam.create_function, FunctionName=name, Role=ROLE, PackageType="Image",
                    Code={"ImageUri": uri}) == (
        "InvalidParameterValueException", f"Source image {uri} does not exist. Provide a valid source image.", 400)
    assert error_of(lam.get_function, FunctionName=name)[0] == "ResourceNotFoundException"


def test_an_image_deleted_before_its_pull_fails_the_function(
    lam: Any, registry: ib.Registry, bootstrap: bytes, tmp_path: Path
) -> None:
    """The registry had it when the function was created, not when it was pulled."""
    uri = push_static(registry, bootstrap, tmp_path, "app/short-lived", "v1", "gone")
    proxy = ib.HoldingProxy(registry.host).start()  # lets CreateFunction's look through, holds the pull's
    try:
        proxied = uri.replace(registry.host, proxy.host)
        name = create(lam, proxied)
        registry.delete_tag("app/short-lived", "v1")
        proxy.release()
        config = wait_settled(lam, name)
    finally:
        proxy.stop()
    assert (config["State"], config["StateReasonCode"]) == ("Failed", "ImageDeleted"), config
    assert (config["LastUpdateStatus"], config["LastUpdateStatusReasonCode"]) == ("Failed", "ImageDeleted")
    assert config["StateReason"].startswith(f"Source image {proxied} does not exist."), config["StateReason"]
    code, message, status = error_of(lam.invoke, FunctionName=name, Payload=b"{}")
    assert (code, status) == ("ResourceConflictException", 409)
    assert message.endswith("state: Failed")


def test_a_tag_follows_pushes_a_digest_does_not(
    lam: Any, registry: ib.Registry, bootstrap: bytes, tmp_path: Path
) -> None:
    uri = push_static(registry, bootstrap, tmp_path / "v1", "app/moving", "stable", "first")
    first = manifest_digest(registry, "app/moving", "stable")
    pinned_uri = f"{registry.host}/app/moving@{first}"
    by_tag, by_digest = create(lam, uri), create(lam, pinned_uri)
    created = lam.get_function_configuration(FunctionName=by_digest)
    assert created["CodeSha256"] == first.split(":")[1]  # known from the request itself
    for name in (by_tag, by_digest):
        assert wait_settled(lam, name)["State"] == "Active"
    assert lam.get_function(FunctionName=by_digest)["Code"]["ResolvedImageUri"] == pinned_uri
    version = lam.publish_version(FunctionName=by_tag)["Version"]
    lam.get_waiter("published_version_active").wait(FunctionName=by_tag, Qualifier=version,
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    push_static(registry, bootstrap, tmp_path / "v2", "app/moving", "stable", "second")
    second = manifest_digest(registry, "app/moving", "stable")
    updated = lam.update_function_code(FunctionName=by_tag, ImageUri=uri)
    assert updated["LastUpdateStatus"] == "InProgress"
    lam.get_waiter("function_updated_v2").wait(FunctionName=by_tag, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert lam.get_function(FunctionName=by_tag)["Code"]["ResolvedImageUri"] == f"{registry.host}/app/moving@{second}"
    assert marker_of(lam, by_tag) == "second"
    assert marker_of(lam, by_tag, Qualifier=version) == "first"  # a published version keeps its image
    assert marker_of(lam, by_digest) == "first"


def test_an_update_to_a_missing_image_is_refused_and_the_function_keeps_its_own(
    lam: Any, registry: ib.Registry, bootstrap: bytes, tmp_path: Path
) -> None:
    name = create(lam, push_static(registry, bootstrap, tmp_path, "app/kept", "v1", "kept"))
    before = wait_settled(lam, name)
    missing = f"{registry.host}/app/kept:not-there"
    assert error_of(lam.update_function_code, FunctionName=name, ImageUri=missing) == (
        "InvalidParameterValueException", f"Source image {missing} does not exist. Provide a valid source image.", 400)
    config = wait_settled(lam, name)
    assert (config["State"], config["LastUpdateStatus"], config["RevisionId"]) == (
        "Active", "Successful", before["RevisionId"])
    assert marker_of(lam, name) == "kept"


def test_an_index_resolves_to_the_functions_architecture(
    lam: Any, registry: ib.Registry, bootstrap: bytes, tmp_path: Path
) -> None:
    layout = tmp_path / "multi"
    # Both carry an x86-64 binary (this host runs it); their configurations tell them apart.
    amd64 = static_layout(layout, bootstrap, "amd64-image", "amd64")
    arm64 = static_layout(layout, bootstrap, "arm64-image", "arm64")
    uri = registry.push(ib.multi_platform(layout, [arm64, amd64]), "app/multi", "v1", all_platforms=True)
    x86, arm = create(lam, uri), create(lam, uri, Architectures=["arm64"])
    assert wait_settled(lam, x86)["State"] == wait_settled(lam, arm)["State"] == "Active"
    assert marker_of(lam, x86) == "amd64-image"
    assert marker_of(lam, arm) == "arm64-image"
    index = manifest_digest(registry, "app/multi", "v1")
    assert lam.get_function(FunctionName=arm)["Code"]["ResolvedImageUri"] == f"{registry.host}/app/multi@{index}"


# ------------------------------------------------------------------ Lambda's rules on the request


def test_refused_combinations(lam: Any, registry: ib.Registry, bootstrap: bytes, tmp_path: Path) -> None:
    uri = push_static(registry, bootstrap, tmp_path, "app/whatever", "v1", "whatever")
    base = {"FunctionName": unique("img"), "Role": ROLE, "PackageType": "Image", "Code": {"ImageUri": uri}}
    not_for_images = "Please don't provide Handler or Runtime or Layer when the intended function PackageType is Image."
    for extra in ({"Runtime": "python3.12"}, {"Handler": "app.handler"},
                  {"Layers": ["arn:aws:lambda:us-east-1:000000000000:layer:x:1"]}):
        assert error_of(lam.create_function, **base, **extra) == ("InvalidParameterValueException", not_for_images, 400)
    assert error_of(lam.create_function, **dict(base, Code={"ZipFile": b"PK"})) == (
        "InvalidParameterValueException", "Please provide ImageUri when creating a function with packageType Image.",
        400)
    for bad in ("app/whatever:v1", f"{registry.host}/app/whatever", "not an image"):
        code, message, status = error_of(lam.create_function, **dict(base, Code={"ImageUri": bad}))
        assert (code, message, status) == (
            "InvalidParameterValueException", f"Source image {bad} is not valid. Provide a valid source image.", 400)
    zip_function = {"FunctionName": unique(), "Role": ROLE, "Runtime": "python3.12", "Handler": "app.handler",
                    "Code": {"ZipFile": fn_zip()}}
    assert error_of(lam.create_function, **zip_function, ImageConfig={"Command": ["x"]}) == (
        "InvalidParameterValueException",
        "Please don't provide ImageConfig when the intended function PackageType is Zip.", 400)
    lam.create_function(**zip_function)
    assert error_of(lam.update_function_code, FunctionName=zip_function["FunctionName"], ImageUri=uri) == (
        "InvalidParameterValueException",
        "Please don't provide ImageUri when updating a function with packageType Zip.", 400)
    name = create(lam, uri)
    wait_settled(lam, name)
    assert error_of(lam.update_function_code, FunctionName=name, ZipFile=fn_zip()) == (
        "InvalidParameterValueException", "Please provide ImageUri when updating a function with packageType Image.",
        400)
    assert error_of(lam.update_function_configuration, FunctionName=name, Handler="app.handler")[1] == not_for_images


def fn_zip() -> bytes:
    from helpers import ECHO, python_zip

    return python_zip(ECHO)


def test_aws_cli_deploys_an_image(server: Server, registry: ib.Registry, bootstrap: bytes, tmp_path: Path) -> None:
    uri = push_static(registry, bootstrap, tmp_path / "cli", "app/cli", "v1", "from-cli")
    name = unique("cli")
    cli = ["aws", "--endpoint-url", server.url, "--region", "us-east-1", "--output", "json", "lambda"]
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
           "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    out = subprocess.run([*cli, "create-function", "--function-name", name, "--package-type", "Image",
                          "--code", f"ImageUri={uri}", "--role", ROLE], capture_output=True, text=True, env=env,
                         timeout=60, check=True)
    assert json.loads(out.stdout)["State"] == "Pending"
    subprocess.run([*cli, "wait", "function-active-v2", "--function-name", name], env=env, timeout=120, check=True)
    got = json.loads(subprocess.run([*cli, "get-function", "--function-name", name], capture_output=True,
                                    text=True, env=env, timeout=60, check=True).stdout)
    assert got["Code"]["RepositoryType"] == "ECR" and got["Code"]["ImageUri"] == uri


# ------------------------------------------------------------------ credentials, sharing, hostile layers


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[ib.Registry]:
    """A registry of its own that asks for credentials: puller / s3cret."""
    if ib.tools_missing():
        pytest.skip(ib.tools_missing())
    registry = ib.Registry(tmp_path / "locked", users={"puller": "s3cret"}).start()
    yield registry
    registry.stop()


def push_locked(locked: ib.Registry, bootstrap: bytes, workdir: Path, repository: str, marker: str) -> str:
    return locked.push(static_layout(workdir, bootstrap, marker).write(), repository, "v1", user="puller")


def test_basic_auth_registry(private_server: Any, tmp_path: Path, bootstrap: bytes, lam: Any,
                             locked: ib.Registry) -> None:
    uri = push_locked(locked, bootstrap, tmp_path / "layout", "team/private", "private")
    # Without credentials (the shared server): access denied, as Lambda says it.
    refused = create(lam, uri)
    config = wait_settled(lam, refused)
    assert (config["State"], config["StateReasonCode"]) == ("Failed", "ImageAccessDenied"), config
    assert config["StateReason"].startswith("Lambda does not have permission to access the ECR image.")
    # With a docker-style config.json (what `docker login` / `skopeo login` write).
    docker_config = tmp_path / "docker"
    docker_config.mkdir()
    auth = base64.b64encode(b"puller:s3cret").decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {locked.host: {"auth": auth}}}))
    srv = private_server(env={"DOCKER_CONFIG": str(docker_config)})
    client = srv.client()
    name = create(client, uri)
    assert wait_settled(client, name)["State"] == "Active"
    assert marker_of(client, name) == "private"


HELPER = """#!/bin/sh
# A credential helper speaking docker-credential-helpers' protocol: `get`, the registry on stdin.
read -r server
echo "$server" >> "$(dirname "$0")/asked"
if [ "$1" = get ] && [ "$server" = "%s" ]; then
  echo '{"ServerURL": "%s", "Username": "puller", "Secret": "s3cret"}'
else
  echo "credentials not found in native keychain"
  exit 1
fi
"""


def test_credential_helpers(private_server: Any, tmp_path: Path, bootstrap: bytes, locked: ib.Registry) -> None:
    """`credHelpers` and `credsStore`, as `docker login` leaves them with a helper installed."""
    uri = push_locked(locked, bootstrap, tmp_path / "layout", "team/helped", "helped")
    helpers = tmp_path / "bin"
    helpers.mkdir()
    helper = helpers / "docker-credential-test"
    helper.write_text(HELPER % (locked.host, locked.host))
    helper.chmod(0o755)
    path = f"{helpers}:{os.environ.get('PATH', '')}"
    for config in ({"credHelpers": {locked.host: "test"}}, {"credsStore": "test", "auths": {locked.host: {}}}):
        docker_config = tmp_path / f"docker-{len(config)}"
        docker_config.mkdir()
        (docker_config / "config.json").write_text(json.dumps(config))
        (helpers / "asked").unlink(missing_ok=True)
        client = private_server(env={"DOCKER_CONFIG": str(docker_config), "PATH": path}).client()
        name = create(client, uri)
        assert wait_settled(client, name)["State"] == "Active", config
        assert marker_of(client, name) == "helped"
        assert locked.host in (helpers / "asked").read_text().split()


def test_one_unpacked_root_per_image_removed_with_its_last_function(
    private_server: Any, registry: ib.Registry, bootstrap: bytes, tmp_path: Path
) -> None:
    srv = private_server()
    client = srv.client()
    uri = push_static(registry, bootstrap, tmp_path, "app/shared", "v1", "shared")
    names = [create(client, uri) for _ in range(2)]
    for name in names:
        assert wait_settled(client, name)["State"] == "Active"
        assert marker_of(client, name) == "shared"
    roots = srv.data_dir / "images" / "roots"

    def unpacked() -> list[str]:
        return sorted(p.name for p in roots.iterdir() if p.is_dir() and not p.name.startswith("."))

    assert unpacked() == [manifest_digest(registry, "app/shared", "v1").split(":")[1]]
    client.delete_function(FunctionName=names[0])
    time.sleep(0.5)
    assert len(unpacked()) == 1  # still used by the other function
    client.delete_function(FunctionName=names[1])
    deadline = time.monotonic() + 10
    while unpacked() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert unpacked() == []


@pytest.fixture
def canary_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A host directory hostile layers aim at (it must stay empty)."""
    folder = Path("/tmp") / f"lambdastack-escape-{uuid.uuid4().hex[:12]}"
    folder.mkdir()
    yield folder
    for path in sorted(folder.rglob("*"), reverse=True):
        path.unlink() if not path.is_dir() else path.rmdir()
    folder.rmdir()


def test_layers_escaping_the_root_make_the_image_invalid(
    lam: Any, server: Server, registry: ib.Registry, bootstrap: bytes, tmp_path: Path, canary_dir: Path
) -> None:
    token = uuid.uuid4().hex
    hostile = {
        "dotdot": [ib.file(f"../../../../../../..{canary_dir}/dotdot-{token}", "x")],
        "absolute": [ib.file(f"{canary_dir}/absolute-{token}", "x")],
        "hardlink-out": [ib.hardlink(f"hl-{token}", "../../../../../../etc/passwd")],
        "hardlink-absolute": [ib.hardlink(f"hl-{token}", "/etc/passwd")],
    }
    for label, entries in hostile.items():
        uri = push_static(registry, bootstrap, tmp_path / label, "app/hostile", label, label,
                          extra=[ib.layer(entries)])
        name = create(lam, uri)
        config = wait_settled(lam, name)
        assert (config["State"], config["StateReasonCode"]) == ("Failed", "InvalidImage"), (label, config)
    assert list(canary_dir.iterdir()) == []
    assert not list(server.data_dir.rglob(f"*{token}*"))


def test_links_in_an_image_cannot_lead_writes_out(
    lam: Any, server: Server, registry: ib.Registry, bootstrap: bytes, tmp_path: Path, canary_dir: Path
) -> None:
    """A link to an absolute or `..` path means the image's own path, as inside the container."""
    lower = ib.layer([ib.symlink("abs", str(canary_dir)), ib.symlink("rel", f"../../../../../../..{canary_dir}"),
                      ib.Entry("dev-null", kind=tarfile.CHRTYPE)])
    upper = ib.layer([ib.file("abs/through-absolute", "x"), ib.file("rel/through-relative", "x")])
    uri = push_static(registry, bootstrap, tmp_path, "app/links", "v1", "links", extra=[lower, upper])
    name = create(lam, uri)
    assert wait_settled(lam, name)["State"] == "Active"
    assert marker_of(lam, name) == "links"
    assert list(canary_dir.iterdir()) == []  # nothing reached the host's directory
    digest = manifest_digest(registry, "app/links", "v1").split(":")[1]
    root = server.data_dir / "images" / "roots" / digest
    inside = root / str(canary_dir).lstrip("/")
    assert sorted(p.name for p in inside.iterdir()) == ["through-absolute", "through-relative"]
    assert not (root / "dev-null").exists()  # device nodes are not created
