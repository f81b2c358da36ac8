"""Container-image benchmark: activation (pull + unpack), cold start and warm round trip.

    python -m bench.images [--functions 20] [--warm 1000]

A registry (Debian's `docker-registry`) runs on a free loopback port; images are OCI layouts
written here and pushed with `skopeo`. The image is a static C bootstrap (the custom runtime
of bench.runtimes) and nothing else. Activation: CreateFunction until GetFunctionConfiguration
says Active (polled every 5 ms), for images never seen before (resolve, fetch the layer,
verify, unpack) and for an image already unpacked (resolve only). Cold start: the first
invocation of each function (a new environment in the image's own root). Warm: sequential
invocations of one function (1,769 MB) on a keep-alive connection.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench.common import BenchServer, Invoker, free_port, percentile, write_result
from bench.runtimes import C_ECHO

ROLE = "arn:aws:iam::000000000000:role/bench"


def static_bootstrap(workdir: Path) -> bytes:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise SystemExit("gcc is needed to build the image's bootstrap")
    src, out = workdir / "bootstrap.c", workdir / "bootstrap"
    src.write_text(C_ECHO)
    subprocess.run([gcc, "-O2", "-static", "-Wno-unused-result", "-o", str(out), str(src)], check=True)
    return out.read_bytes()


def write_layout(layout: Path, binary: bytes, marker: str) -> None:
    """An OCI layout with one layer: /bootstrap (plus a file that makes each image distinct)."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        for name, data, mode in (("bootstrap", binary, 0o755), ("marker", marker.encode(), 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    plain = tar_bytes.getvalue()
    layer = blob(gzip.compress(plain, mtime=0))
    config = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/bootstrap"]},
                              "rootfs": {"type": "layers",
                                         "diff_ids": [f"sha256:{hashlib.sha256(plain).hexdigest()}"]}}).encode())
    manifest = blob(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
    }).encode())
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
         "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))


class Registry:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        config = workdir / "registry.yml"
        config.write_text("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n"
                          f"  filesystem:\n    rootdirectory: {workdir / 'storage'}\n"
                          f"http:\n  addr: 127.0.0.1:{self.port}\n")
        self.proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                requests.get(f"http://127.0.0.1:{self.port}/v2/", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.05)
        raise SystemExit("the registry did not start")

    def push(self, layout: Path, name: str) -> str:
        target = f"127.0.0.1:{self.port}/bench/{name}:latest"
        subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                        f"oci:{layout}:latest", f"docker://{target}"], check=True)
        return target

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def activate(lam: Any, name: str, uri: str, **config: Any) -> float:
    t0 = time.perf_counter()
    lam.create_function(FunctionName=name, Role=ROLE, PackageType="Image", Code={"ImageUri": uri}, **config)
    while (state := lam.get_function_configuration(FunctionName=name)["State"]) == "Pending":
        time.sleep(0.005)
    if state != "Active":
        raise SystemExit(f"{name} is {state}")
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--functions", type=int, default=20, help="functions (and distinct images) to create")
    parser.add_argument("--warm", type=int, default=1000, help="sequential warm invocations")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-images-"))
    registry = Registry(workdir)
    server = BenchServer()
    try:
        binary = static_bootstrap(workdir)
        uris = []
        for i in range(args.functions):
            write_layout(workdir / f"layout{i}", binary, f"image {i}")
            uris.append(registry.push(workdir / f"layout{i}", f"image{i}"))
        lam = server.client()
        activate(lam, "warmup", uris[0])  # the registry client and the exec zygote start once
        Invoker(server.port, "warmup")()
        new_image = [activate(lam, f"new-{i}", uri) for i, uri in enumerate(uris[1:], 1)]
        same_image = [activate(lam, f"same-{i}", uris[1]) for i in range(args.functions)]
        cold: list[float] = []
        for i in range(args.functions):
            invoke = Invoker(server.port, f"same-{i}")
            t0 = time.perf_counter()
            invoke()
            cold.append((time.perf_counter() - t0) * 1000)
            invoke.conn.close()
        activate(lam, "warm", uris[0], MemorySize=1769)
        invoke = Invoker(server.port, "warm")
        for _ in range(100):
            invoke()
        warm: list[float] = []
        for _ in range(args.warm):
            t0 = time.perf_counter()
            invoke()
            warm.append((time.perf_counter() - t0) * 1000)
        isolation = requests.get(server.url + "/_lambdastack/health", timeout=10).json()["isolation"]
    finally:
        server.close()
        registry.close()
        shutil.rmtree(workdir, ignore_errors=True)
    results = {
        name: {"p50": percentile(values, 50), "p99": percentile(values, 99), "n": len(values)}
        for name, values in (("activation, new image", new_image), ("activation, image already unpacked", same_image),
                             ("cold start", cold), ("warm round trip", warm))
    }
    print(f"isolation: {isolation}; image: a static C bootstrap ({len(binary) // 1024} KB)")
    print(f"{'workload':<38} {'p50':>10} {'p99':>10}")
    for name, r in results.items():
        print(f"{name:<38} {r['p50']:>8.2f}ms {r['p99']:>8.2f}ms")
    path = write_result("images", {"isolation": isolation, "results": results, "functions": args.functions,
                                   "warm": args.warm})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
