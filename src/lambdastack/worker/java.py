"""The Java runtimes this host can run: `java<major>` for each JDK found under /usr/lib/jvm.

The JVM is started as a custom runtime's `bootstrap` would be, from the JDK's own path on
the host (/usr is visible read-only inside every environment; a Debian JDK's configuration
under /etc/java-<major>-openjdk is mounted beside it). lambdastack's runtime client (Java
sources shipped as package data, `runtime/java/`) is compiled with javac into the data dir
when the first Java environment starts, keyed by the sources' hash, and mounted at /var/runtime.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from lambdastack import errors

log = logging.getLogger("lambdastack")

MAJORS = (11, 17, 21, 25)  # the Java runtimes of Lambda's model that still take new functions
JVM_ROOTS = ("/usr/lib/jvm",)
RUNTIME_DIR_INSIDE = "/var/runtime"
RUNTIME_JAR = "lambdastack-runtime.jar"
MAIN_CLASS = "lambdastack.runtime.Main"

_RELEASE_VERSION = re.compile(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?', re.M)


@dataclass(frozen=True)
class JavaRuntime:
    runtime: str  # e.g. "java17"
    home: Path  # the JDK's real directory on the host
    major: int
    client: Path  # the folder holding the compiled runtime client (RUNTIME_JAR)

    @property
    def java(self) -> str:
        return str(self.home / "bin" / "java")

    def binds(self) -> list[tuple[str, str]]:
        """What the runtime's zygote mounts into the base root: (host path, path inside)."""
        binds = [(str(self.client), RUNTIME_DIR_INSIDE)]
        conf = f"/etc/java-{self.major}-openjdk"
        if os.path.isdir(conf):  # a Debian JDK's lib/*.cfg and security files link there
            binds.append((conf, conf))
        return binds


def sources_dir() -> Path:
    """lambdastack's Java runtime client: the com.amazonaws.services.lambda.runtime types and its main class."""
    return Path(__file__).resolve().parent.parent / "runtime" / "java"


def _major(home: Path) -> int | None:
    try:
        text = (home / "release").read_text()
    except OSError:
        return None
    m = _RELEASE_VERSION.search(text)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def discover_jdks(roots: tuple[str, ...] = JVM_ROOTS) -> dict[int, Path]:
    """major version -> the JDK's real home; the first (by name) of each major wins."""
    found: dict[int, Path] = {}
    for root in roots:
        try:
            names = sorted(os.listdir(root))
        except OSError:
            continue
        for name in names:
            home = Path(os.path.realpath(os.path.join(root, name)))
            if not os.access(home / "bin" / "java", os.X_OK):
                continue
            major = _major(home)
            if major is not None and major in MAJORS:
                found.setdefault(major, home)
    return dict(sorted(found.items()))


class JavaRuntimes:
    """The Java runtimes of this host and their runtime client, compiled at first use."""

    def __init__(self, data_dir: Path, jdks: dict[int, Path] | None = None) -> None:
        self.jdks = discover_jdks() if jdks is None else jdks
        digest = hashlib.sha256()
        for path in sorted(sources_dir().rglob("*.java")):
            digest.update(str(path.relative_to(sources_dir())).encode() + b"\0" + path.read_bytes())
        self.client = data_dir / "java-runtime" / digest.hexdigest()[:16]
        self.runtimes = {f"java{major}": JavaRuntime(f"java{major}", home, major, self.client)
                         for major, home in self.jdks.items()}
        self._lock = threading.Lock()
        self._problem: str | None = None

    def _javac(self) -> str | None:
        for home in self.jdks.values():
            if os.access(home / "bin" / "javac", os.X_OK):
                return str(home / "bin" / "javac")
        return shutil.which("javac")

    def _compile(self) -> None:
        try:
            jar = self.client / RUNTIME_JAR
            if jar.exists():
                return
            javac = self._javac()
            if javac is None:
                self._problem = "no javac found to compile lambdastack's Java runtime client (install a JDK, not a JRE)"
                return
            self.client.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self.client.parent) as tmp:
                sources = [str(p) for p in sorted(sources_dir().rglob("*.java"))]
                classes = Path(tmp) / "classes"
                # String concatenation compiled inline: its invokedynamic form spins method handles
                # at the first concatenation, ~100 ms of a cold start.
                subprocess.run([javac, "--release", str(min(self.jdks)), "-nowarn", "-XDstringConcat=inline",
                                "-d", str(classes), *sources],
                               check=True, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
                jar_tool = Path(javac).with_name("jar")
                staged = Path(tmp) / RUNTIME_JAR
                subprocess.run([str(jar_tool), "--create", "--file", str(staged), "-C", str(classes), "."],
                               check=True, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
                os.replace(staged, jar)
        except (OSError, subprocess.SubprocessError) as e:
            detail = (getattr(e, "stderr", b"") or b"").decode(errors="replace")
            self._problem = f"could not compile lambdastack's Java runtime client: {e} {detail}"
            log.warning("%s", self._problem)

    def ensure(self) -> None:
        """Compile the runtime client unless the data dir has it (a few seconds, once: the first
        Java environment waits for it); InvalidRuntimeException if it cannot be."""
        with self._lock:
            if self._problem is None and not (self.client / RUNTIME_JAR).exists():
                self._compile()
        if self._problem is not None or not (self.client / RUNTIME_JAR).exists():
            raise errors.InvalidRuntime(self._problem or "lambdastack's Java runtime client is not ready")


def java_argv(runtime: JavaRuntime, memory_mb: int) -> tuple[str, ...]:
    """The JVM's command line as Lambda's Java runtimes start it: the heap at ~85% of the
    function's memory, tiered compilation stopped at C1 for fast starts, the class-data-sharing
    archive when the JDK has one. JAVA_TOOL_OPTIONS (read by the JVM itself) can override."""
    heap_kb = memory_mb * 1024 * 85 // 100
    # The JVM commits its initial heap up front (1/64 of the host's RAM by default): an eighth
    # of the function's memory keeps it within the data-size limit of environments without a
    # memory cgroup, and the heap grows from there.
    initial_kb = memory_mb * 1024 // 8
    return (
        runtime.java, "-XX:+TieredCompilation", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
        f"-XX:MaxHeapSize={heap_kb}k", f"-XX:InitialHeapSize={initial_kb}k", "-XX:+UseSerialGC",
        "-Djava.net.preferIPv4Stack=true", "-Dfile.encoding=UTF-8",
        "-cp", f"{RUNTIME_DIR_INSIDE}/{RUNTIME_JAR}", MAIN_CLASS,
    )


# The host's Java runtimes, once the engine has looked for them.
INSTALLED: JavaRuntimes | None = None


def runtime_argv(runtime: str, memory_mb: int) -> tuple[str, ...]:
    """The command line of a `java*` function; InvalidRuntimeException when this host has no such JDK.

    (The runtime's zygote has the runtime client compiled before it starts.)"""
    found = INSTALLED.runtimes.get(runtime) if INSTALLED is not None else None
    if found is None:
        raise errors.InvalidRuntime(
            f"The runtime {runtime} needs a JDK {runtime[len('java'):]} on this lambdastack host; none was found "
            f"under {', '.join(JVM_ROOTS)}."
        )
    return java_argv(found, memory_mb)
