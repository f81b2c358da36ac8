"""The Java runtimes: handlers compiled with javac against lambdastack's
com.amazonaws.services.lambda.runtime types, deployed as Lambda takes them (classes at the
root, lib/*.jar) and invoked through boto3 against a real server."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import ROLE, Server, create_function, invoke, invoke_ok, make_zip, stored_log, unique, wait_for

from lambdastack.worker.java import discover_jdks, sources_dir

JDKS = discover_jdks()
pytestmark = pytest.mark.skipif(not JDKS or not any((h / "bin" / "javac").exists() for h in JDKS.values()),
                                reason="no JDK on this host")

SOURCES = {
    "example/Person.java": """
package example;
import java.util.List;
public class Person {
    private String name;
    private int age;
    public List<String> tags;
    public Address address;
    public String getName() { return name; }
    public void setName(String name) { this.name = name; }
    public int getAge() { return age; }
    public void setAge(int age) { this.age = age; }
}
""",
    "example/Address.java": """
package example;
public class Address { public String city; public Integer zip; }
""",
    "example/Greeting.java": """
package example;
public class Greeting {
    private final String message; private final boolean adult; private final Address where;
    public Greeting(String message, boolean adult, Address where) {
        this.message = message; this.adult = adult; this.where = where;
    }
    public String getMessage() { return message; }
    public boolean isAdult() { return adult; }
    public Address getWhere() { return where; }
    public String getNothing() { return null; }
}
""",
    "example/Greeter.java": """
package example;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
public class Greeter implements RequestHandler<Person, Greeting> {
    @Override
    public Greeting handleRequest(Person p, Context context) {
        return new Greeting("hello " + p.getName() + " " + p.tags, p.getAge() >= 18, p.address);
    }
}
""",
    "example/Methods.java": """
package example;
import com.amazonaws.services.lambda.runtime.Context;
import java.util.*;
public class Methods {
    public static String upper(String s) { return s.toUpperCase(); }
    public int twice(int n, Context context) { return n * 2; }
    public long sum(List<Integer> items) { long t = 0; for (int i : items) t += i; return t; }
    public Map<String, Object> keys(Map<String, Object> m) {
        return Collections.singletonMap("keys", new TreeSet<>(m.keySet()));
    }
    public void nothing(Map<String, Object> m) { System.out.println("nothing ran " + m.get("tag")); }
    public double half(double d) { return d / 2; }
}
""",
    "example/Stream.java": """
package example;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.*;
import java.nio.charset.StandardCharsets;
public class Stream implements RequestStreamHandler {
    @Override
    public void handleRequest(InputStream in, OutputStream out, Context context) throws IOException {
        String text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        String fn = context.getFunctionName();
        out.write(("{\\"echo\\":" + text + ",\\"fn\\":\\"" + fn + "\\"}").getBytes(StandardCharsets.UTF_8));
    }
}
""",
    "example/Counter.java": """
package example;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.*;
public class Counter implements RequestHandler<Object, Map<String, Integer>> {
    static int classInits; static int instances;
    static { classInits++; System.out.println("STATIC INIT"); }
    private int calls;
    public Counter() { instances++; }
    @Override
    public Map<String, Integer> handleRequest(Object in, Context context) {
        calls++;
        Map<String, Integer> m = new LinkedHashMap<>();
        m.put("classInits", classInits); m.put("instances", instances); m.put("calls", calls);
        return m;
    }
}
""",
    "example/Boom.java": """
package example;
import com.amazonaws.services.lambda.runtime.Context;
public class Boom {
    public String handle(String why, Context context) {
        try {
            Integer.parseInt(why);
            return "fine";
        } catch (NumberFormatException e) {
            throw new IllegalStateException("could not use " + why, e);
        }
    }
}
""",
    "example/Ctx.java": """
package example;
import com.amazonaws.services.lambda.runtime.*;
import java.util.*;
public class Ctx {
    public Map<String, Object> handle(Map<String, Object> event, Context c) throws Exception {
        System.out.println("stdout line");
        System.err.println("stderr line");
        c.getLogger().log("logger line\\n");
        LambdaRuntime.getLogger().log("runtime logger line\\n");
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("requestId", c.getAwsRequestId());
        m.put("arn", c.getInvokedFunctionArn());
        m.put("name", c.getFunctionName());
        m.put("version", c.getFunctionVersion());
        m.put("memory", c.getMemoryLimitInMB());
        m.put("remaining", c.getRemainingTimeInMillis());
        m.put("logGroup", c.getLogGroupName());
        m.put("heapMb", Runtime.getRuntime().maxMemory() / (1024 * 1024));
        ClientContext cc = c.getClientContext();
        if (cc != null) {
            m.put("custom", cc.getCustom());
            m.put("appTitle", cc.getClient().getAppTitle());
        }
        Object sleep = event.get("sleepMs");
        if (sleep != null) Thread.sleep(((Number) sleep).longValue());
        return m;
    }
}
""",
}

LIB_SOURCES = {
    "dep/Hog.java": """
package dep;
import java.util.*;
public class Hog {
    static final List<byte[]> KEPT = new ArrayList<>();
    public String handle(Map<String, Integer> event) {
        for (int i = 0; i < event.get("mb"); i++) KEPT.add(new byte[1024 * 1024]);
        return "kept " + KEPT.size();
    }
}
""",
    "dep/Shout.java": """
package dep;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
public class Shout implements RequestHandler<String, String> {
    @Override
    public String handleRequest(String s, Context context) { return s + "!"; }
}
""",
}


def _javac(home: Path, sources: dict[str, str], out: Path, classpath: Path) -> None:
    src = out.parent / (out.name + "-src")
    for rel, text in sources.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    out.mkdir(parents=True)
    subprocess.run([str(home / "bin" / "javac"), "--release", "11", "-cp", str(classpath), "-d", str(out),
                    *[str(src / rel) for rel in sources]], check=True, capture_output=True, timeout=300)


def _zip_dir(folder: Path, prefix: str = "") -> dict[str, bytes]:
    return {prefix + str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _jar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """The deployment packages' files: the handlers' classes at the root; a jar under lib/ that
    bundles its own copy of the Lambda interfaces, as an uber-jar built for Lambda does."""
    home = next(h for h in JDKS.values() if (h / "bin" / "javac").exists())
    root = tmp_path_factory.mktemp("java")
    interfaces = root / "interfaces"
    interfaces.mkdir()
    api = sources_dir() / "com"
    subprocess.run([str(home / "bin" / "javac"), "--release", "11", "-d", str(interfaces),
                    *[str(p) for p in sorted(api.rglob("*.java"))]], check=True, capture_output=True, timeout=300)
    _javac(home, SOURCES, root / "classes", interfaces)
    _javac(home, LIB_SOURCES, root / "lib-classes", interfaces)
    lib_jar = _jar({**_zip_dir(root / "lib-classes"), **_zip_dir(interfaces)})
    return {"classes": _zip_dir(root / "classes"), "lib": {"lib/dep.jar": lib_jar}}


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    return plain_lam


@pytest.fixture(scope="module")
def runtime(server: Server) -> str:
    runtimes = requests.get(server.url + "/_lambdastack/health", timeout=5).json()["runtimes"]
    found = next((r for r in runtimes if re.fullmatch(r"java\d+", r)), None)
    assert found is not None, runtimes  # a JDK was found above: the server must offer it
    return found


def java_function(lam: Any, runtime: str, code: dict[str, dict[str, bytes]], handler: str, **config: Any) -> str:
    return create_function(lam, files=code["classes"], handler=handler, runtime=runtime, **config)


def test_pojo_in_and_out(lam: Any, runtime: str, code: Any) -> None:
    name = java_function(lam, runtime, code, "example.Greeter")
    event = {"name": "Ada", "AGE": 36, "tags": ["x", "y"], "address": {"city": "London", "zip": None},
             "unknown": {"ignored": True}}
    assert invoke_ok(lam, name, event) == {"message": "hello Ada [x, y]", "adult": True, "where": {"city": "London"}}


def test_method_handlers_with_strings_primitives_lists_maps_and_void(lam: Any, runtime: str, code: Any) -> None:
    name = java_function(lam, runtime, code, "example.Methods::upper")
    assert invoke_ok(lam, name, "shout") == "SHOUT"
    cases = [("twice", 21, 42), ("sum", [1, 2, 3, 4], 10), ("keys", {"b": 1, "a": 2}, {"keys": ["a", "b"]}),
             ("half", 5, 2.5), ("nothing", {"tag": "t1"}, None)]
    for method, event, expected in cases:
        lam.update_function_configuration(FunctionName=name, Handler=f"example.Methods::{method}")
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        assert invoke_ok(lam, name, event) == expected, method
    r = invoke(lam, name, {"tag": "t2"}, LogType="Tail")
    assert "nothing ran t2" in r.log


def test_stream_handler(lam: Any, runtime: str, code: Any) -> None:
    name = java_function(lam, runtime, code, "example.Stream")
    assert invoke_ok(lam, name, {"a": [1, 2]}) == {"echo": {"a": [1, 2]}, "fn": name}


def test_static_initializer_and_constructor_run_once_per_environment(
    lam: Any, server: Server, runtime: str, code: Any
) -> None:
    name = java_function(lam, runtime, code, "example.Counter")
    results = [invoke(lam, name, {}, LogType="Tail") for _ in range(3)]
    assert [r.result for r in results] == [{"classInits": 1, "instances": 1, "calls": n} for n in (1, 2, 3)]
    # The static initializer ran in the init phase, before the first invocation's START.
    assert all("STATIC INIT" not in r.log for r in results)
    assert any("STATIC INIT" in line for lines in stored_log(server, lam, name).values() for line in lines)


def test_uncaught_exception_with_its_cause(lam: Any, runtime: str, code: Any) -> None:
    name = java_function(lam, runtime, code, "example.Boom::handle")
    assert invoke_ok(lam, name, "12") == "fine"
    r = invoke(lam, name, "twelve", LogType="Tail")
    assert r.function_error == "Unhandled"
    body = r.result
    assert body["errorMessage"] == "could not use twelve"
    assert body["errorType"] == "java.lang.IllegalStateException"
    assert body["stackTrace"] and all(isinstance(line, str) for line in body["stackTrace"])
    assert body["stackTrace"][0].startswith("example.Boom.handle(Boom.java:")
    assert body["cause"]["errorType"] == "java.lang.NumberFormatException"
    assert body["cause"]["errorMessage"] == 'For input string: "twelve"'
    assert isinstance(body["cause"]["stackTrace"], list)
    assert "java.lang.IllegalStateException" in r.log
    # The environment survives: the next invocation succeeds on it.
    assert invoke_ok(lam, name, "7") == "fine"


def test_a_missing_class_fails_the_init(lam: Any, runtime: str, code: Any) -> None:
    name = java_function(lam, runtime, code, "example.Nowhere::handle")
    r = invoke(lam, name, {})
    assert r.function_error == "Unhandled"
    assert r.result["errorType"] == "java.lang.ClassNotFoundException"
    assert "example.Nowhere" in r.result["errorMessage"]


def test_context_logs_and_heap(lam: Any, runtime: str, code: Any) -> None:
    name = java_function(lam, runtime, code, "example.Ctx::handle", MemorySize=256, Timeout=5)
    r = invoke(lam, name, {}, LogType="Tail")
    assert r.function_error is None, r.payload
    got = r.result
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    assert got["requestId"] == r.request_id
    assert got["arn"] == arn
    assert (got["name"], got["version"], got["memory"]) == (name, "$LATEST", 256)
    assert got["logGroup"] == f"/aws/lambda/{name}"
    assert 3000 < got["remaining"] <= 5000
    assert 150 <= got["heapMb"] <= 256 * 0.9
    lines = r.log.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(f"START RequestId: {r.request_id}"))
    end = lines.index(f"END RequestId: {r.request_id}")
    body = lines[start + 1:end]
    for text in ("stdout line", "stderr line", "logger line", "runtime logger line"):
        assert text in body, (text, r.log)
    assert lines[end + 1].startswith(f"REPORT RequestId: {r.request_id}")
    assert "custom" not in got  # no ClientContext: getClientContext() is null
    client_context = {"custom": {"k": "v"}, "client": {"app_title": "shop", "installation_id": "i-1"}, "env": {}}
    got = invoke_ok(lam, name, {}, ClientContext=base64.b64encode(json.dumps(client_context).encode()).decode())
    assert (got["custom"], got["appTitle"]) == ({"k": "v"}, "shop")


def test_event_invoke(lam: Any, server: Server, runtime: str, code: Any) -> None:
    name = java_function(lam, runtime, code, "example.Methods::nothing")
    r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"tag": "async-one"}')
    assert r["StatusCode"] == 202
    wait_for(lambda: any("nothing ran async-one" in line for lines in stored_log(server, lam, name).values()
                         for line in lines), timeout=60)


def test_timeout(lam: Any, runtime: str, code: Any) -> None:
    name = java_function(lam, runtime, code, "example.Ctx::handle", Timeout=1)
    invoke_ok(lam, name, {})  # warm: the JVM's start is not part of what times out
    r = invoke(lam, name, {"sleepMs": 5000})
    assert r.function_error == "Unhandled"
    assert r.result == {"errorMessage": f"RequestId: {r.request_id} Error: Task timed out after 1.00 seconds",
                        "errorType": "Sandbox.Timedout"}
    assert invoke_ok(lam, name, {})["name"] == name  # a new environment serves the next one


def test_jar_in_lib_bundling_its_own_lambda_interfaces(lam: Any, runtime: str, code: Any) -> None:
    name = create_function(lam, files=code["lib"], handler="dep.Shout", runtime=runtime)
    assert invoke_ok(lam, name, "hey") == "hey!"


def test_an_uber_jar_uploaded_as_the_deployment_package(lam: Any, runtime: str, code: Any) -> None:
    name = unique()
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler="dep.Shout",
                        Code={"ZipFile": code["lib"]["lib/dep.jar"]})
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert invoke_ok(lam, name, "uber") == "uber!"


def test_a_java_runtime_without_its_jdk_is_refused_at_create(lam: Any, server: Server) -> None:
    offered = requests.get(server.url + "/_lambdastack/health", timeout=5).json()["runtimes"]
    missing = next((r for r in ("java21", "java17", "java25", "java11") if r not in offered), None)
    if missing is None:
        pytest.skip("every Java runtime has its JDK on this host")
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="not supported by this lambdastack host"):
        create_function(lam, files={"a.txt": "x"}, handler="example.A", runtime=missing)


def test_a_layer_jar_under_java_lib(lam: Any, runtime: str, code: Any) -> None:
    layer = lam.publish_layer_version(LayerName=unique("jlib"), Content={"ZipFile": make_zip(
        {"java/lib/dep.jar": code["lib"]["lib/dep.jar"]})})["LayerVersionArn"]
    name = create_function(lam, files={"README": "code in the layer"}, handler="dep.Shout", runtime=runtime,
                           Layers=[layer])
    assert invoke_ok(lam, name, "layer") == "layer!"


def test_out_of_memory_fails_the_invocation_and_replaces_the_environment(lam: Any, runtime: str, code: Any) -> None:
    # At 512 MB the heap (85%) runs out before the environment's memory does: the JVM's error.
    name = create_function(lam, files=code["lib"], handler="dep.Hog::handle", runtime=runtime, MemorySize=512)
    assert invoke_ok(lam, name, {"mb": 10}) == "kept 10"
    r = invoke(lam, name, {"mb": 600})
    assert r.function_error == "Unhandled"
    assert (r.result["errorType"], r.result["errorMessage"]) == ("java.lang.OutOfMemoryError", "Java heap space")
    assert invoke_ok(lam, name, {"mb": 1}) == "kept 1"  # a new environment: the static list starts empty


@pytest.mark.parametrize("level", ["userns", "process"])
def test_weaker_isolation_levels(private_server: Any, code: Any, level: str) -> None:
    """In a user namespace, and as a plain process started from the host paths behind
    /var/task and /var/runtime."""
    server = private_server("--isolation", level)
    health = requests.get(server.url + "/_lambdastack/health", timeout=5).json()
    assert health["isolation"].startswith(level)
    runtime = next(r for r in health["runtimes"] if re.fullmatch(r"java\d+", r))
    lam = server.client()
    name = create_function(lam, files={**code["classes"], **code["lib"]}, handler="example.Boom::handle",
                           runtime=runtime)
    # The runtime client is compiled in the background when the server starts: the first
    # invocation waits for it.
    assert invoke_ok(lam, name, "5") == "fine"
    r = invoke(lam, name, "five")
    assert (r.function_error, r.result["errorType"]) == ("Unhandled", "java.lang.IllegalStateException")
    lam.update_function_configuration(FunctionName=name, Handler="dep.Shout")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert invoke_ok(lam, name, level) == level + "!"
