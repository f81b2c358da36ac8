"""Runtime benchmark: cold start and warm round trip of a no-op function in each kind of runtime.

    python -m bench.runtimes [--cold 20] [--warm 1000]

Kinds: the built-in Python runtime, Node.js (lambdastack's Runtime API client), Java (a
RequestHandler compiled here with the host's javac, when a JDK is found), and a custom
runtime (`provided.al2023`) whose bootstrap is a small C program compiled here. Cold start:
the first invocation of each of N new functions (fork from the runtime's zygote, namespaces,
cgroup, the runtime's own start and init), end to end as the client sees it. Warm: sequential
invocations of one function (1,769 MB: a full core) on a keep-alive connection.
"""

from __future__ import annotations

import argparse
import io
import platform
import re
import shutil
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import requests

from bench import loadgen
from bench.common import NOOP, BenchServer, Invoker, percentile, write_result
from lambdastack.worker.java import discover_jdks, sources_dir

ROLE = "arn:aws:iam::000000000000:role/bench"

NODE = "export const handler = async (event) => event;\n"

# A custom runtime in C: next, then post the event back, one connection per request.
C_ECHO = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static struct sockaddr_in api;
static char buf[1 << 20];
static size_t call(const char *head, const char *body, size_t len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&api, sizeof api)) exit(71);
    write(fd, head, strlen(head));
    if (len) write(fd, body, len);
    size_t used = 0;
    ssize_t n;
    while ((n = read(fd, buf + used, sizeof buf - 1 - used)) > 0) used += (size_t)n;
    close(fd);
    buf[used] = 0;
    return used;
}
int main(void) {
    char host[64], head[512], rid[128], event[65536];
    int port;
    sscanf(getenv("AWS_LAMBDA_RUNTIME_API"), "%63[^:]:%d", host, &port);
    api.sin_family = AF_INET;
    api.sin_port = htons((unsigned short)port);
    inet_pton(AF_INET, host, &api.sin_addr);
    for (;;) {
        call("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", NULL, 0);
        char *id = strcasestr(buf, "Lambda-Runtime-Aws-Request-Id: ");
        sscanf(id + 31, "%127[^\r]", rid);
        char *body = strstr(buf, "\r\n\r\n") + 4;
        size_t len = strlen(body);
        memcpy(event, body, len);
        snprintf(head, sizeof head, "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: a\r\n"
                 "Connection: close\r\nContent-Length: %zu\r\n\r\n", rid, len);
        call(head, event, len);
    }
}
"""


def zip_of(files: dict[str, str | bytes], executable: tuple[str, ...] = ()) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100755 if name in executable else 0o100644) << 16
            z.writestr(info, content)
    return out.getvalue()


def c_bootstrap() -> bytes:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise SystemExit("gcc is needed to build the custom runtime's bootstrap")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "bootstrap.c", Path(tmp) / "bootstrap"
        src.write_text(C_ECHO)
        subprocess.run([gcc, "-O2", "-Wall", "-Werror", "-Wno-unused-result", "-o", str(out), str(src)], check=True)
        return out.read_bytes()


JAVA_NOOP = """
package bench;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.Map;
public class Noop implements RequestHandler<Map<String, Object>, String> {
    @Override
    public String handleRequest(Map<String, Object> event, Context context) { return "ok"; }
}
"""


def java_noop() -> bytes:
    """A no-op RequestHandler's classes, compiled against lambdastack's Lambda interfaces."""
    home = next(h for h in discover_jdks().values() if (h / "bin" / "javac").exists())
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "bench" / "Noop.java", Path(tmp) / "classes"
        src.parent.mkdir()
        src.write_text(JAVA_NOOP)
        subprocess.run([str(home / "bin" / "javac"), "--release", "11", "-sourcepath", str(sources_dir()),
                        "-d", str(out), str(src)], check=True)
        return zip_of({"bench/Noop.class": (out / "bench" / "Noop.class").read_bytes()})


def kinds(runtimes: list[str]) -> dict[str, tuple[str, str, bytes]]:
    """kind -> (runtime, handler, zip)."""
    python = f"python{platform.python_version_tuple()[0]}.{platform.python_version_tuple()[1]}"
    found: dict[str, tuple[str, str, bytes]] = {python: (python, "app.handler", zip_of({"app.py": NOOP}))}
    node = next((r for r in runtimes if re.fullmatch(r"nodejs\d+\.x", r)), None)
    if node is not None:
        found[node] = (node, "index.handler", zip_of({"index.mjs": NODE}))
    java = next((r for r in runtimes if re.fullmatch(r"java\d+", r)), None)
    if java is not None:
        found[java] = (java, "bench.Noop", java_noop())
    found["provided.al2023 (C)"] = ("provided.al2023", "function.handler",
                                    zip_of({"bootstrap": c_bootstrap()}, executable=("bootstrap",)))
    return found


def measure(server: BenchServer, kind: str, runtime: str, handler: str, code: bytes, cold: int,
            warm: int) -> dict[str, Any]:
    lam = server.client()
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", kind).strip("-")

    def create(name: str, **config: Any) -> None:
        lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler, Code={"ZipFile": code},
                            **config)

    create(f"{slug}-warmup")  # the runtime's zygote starts once: what follows are new environments
    Invoker(server.port, f"{slug}-warmup")()
    names = [f"{slug}-cold-{i}" for i in range(cold)]
    for name in names:
        create(name)
    cold_ms = [loadgen.first_invocation_ms(server.port, name) for name in names]
    create(f"{slug}-warm", MemorySize=1769)
    invoke = Invoker(server.port, f"{slug}-warm")
    for _ in range(100):
        invoke()
    warm_ms: list[float] = []
    for _ in range(warm):
        t0 = time.perf_counter()
        invoke()
        warm_ms.append((time.perf_counter() - t0) * 1000)
    return {
        "runtime": runtime,
        "cold_ms": {"p50": percentile(cold_ms, 50), "p99": percentile(cold_ms, 99), "n": len(cold_ms)},
        "warm_ms": {"p50": percentile(warm_ms, 50), "p99": percentile(warm_ms, 99), "n": len(warm_ms)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", type=int, default=20, help="functions to cold-start per runtime")
    parser.add_argument("--warm", type=int, default=1000, help="sequential warm invocations per runtime")
    args = parser.parse_args()
    server = BenchServer()
    try:
        health = requests.get(server.url + "/_lambdastack/health", timeout=10).json()
        results = {kind: measure(server, kind, *spec, args.cold, args.warm)
                   for kind, spec in kinds(health["runtimes"]).items()}
    finally:
        server.close()
    print(f"isolation: {health['isolation']}")
    print(f"{'runtime':<24} {'cold p50':>10} {'cold p99':>10} {'warm p50':>10} {'warm p99':>10}")
    for kind, r in results.items():
        print(f"{kind:<24} {r['cold_ms']['p50']:>8.1f}ms {r['cold_ms']['p99']:>8.1f}ms "
              f"{r['warm_ms']['p50']:>8.2f}ms {r['warm_ms']['p99']:>8.2f}ms")
    path = write_result("runtimes", {"isolation": health["isolation"], "results": results,
                                     "cold": args.cold, "warm": args.warm})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
