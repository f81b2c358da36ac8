"""One conformance function, written for every kind of runtime lambdastack runs.

Each implementation answers the same events (`{"op": ...}`):

  echo     return the event
  context  request id, invoked ARN, remaining time, function name/version, memory, log group/stream,
           trace id and client context, as the runtime exposes them
  env      the variables in ENV_NAMES (null when unset) and the working directory
  fail     fail with the message "boom"
  sleep    sleep 5 s (past the function's timeout)
  log      write the line "conformance-log-line", return "logged"
  exit     end the runtime process with status 3
  count    how many events this environment has handled (warm state)

Custom runtimes (shell, C) speak the Runtime API themselves; the shell one uses curl and the
host's /usr tools, which a `provided` environment sees.
"""

from __future__ import annotations

import functools
import importlib.metadata
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_NAMES = [
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_REGION",
    "AWS_DEFAULT_REGION", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "_HANDLER", "TZ",
    "LANG", "PATH", "LD_LIBRARY_PATH", "AWS_EXECUTION_ENV", "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_INITIALIZATION_TYPE", "NODE_PATH", "GREETING",
]

PYTHON = '''
import json, os, time

count = 0
ENV_NAMES = %r

def handler(event, context):
    global count
    count += 1
    op = event.get("op")
    if op == "echo":
        return event
    if op == "context":
        cc = context.client_context
        return {
            "request_id": context.aws_request_id, "invoked_arn": context.invoked_function_arn,
            "remaining_ms": context.get_remaining_time_in_millis(), "function_name": context.function_name,
            "function_version": context.function_version, "memory_mb": str(context.memory_limit_in_mb),
            "log_group": context.log_group_name, "log_stream": context.log_stream_name,
            "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
            "client_context": {"custom": cc.custom} if cc else None,
        }
    if op == "env":
        return dict({name: os.environ.get(name) for name in ENV_NAMES}, cwd=os.getcwd())
    if op == "fail":
        raise RuntimeError("boom")
    if op == "sleep":
        time.sleep(5)
    if op == "log":
        print("conformance-log-line")
        return "logged"
    if op == "exit":
        os._exit(3)
    if op == "count":
        return {"count": count}
'''.replace("%r", repr(ENV_NAMES))

NODE_BODY = '''
  count += 1;
  switch (event.op) {
    case 'echo':
      return event;
    case 'context':
      return {
        request_id: context.awsRequestId, invoked_arn: context.invokedFunctionArn,
        remaining_ms: context.getRemainingTimeInMillis(), function_name: context.functionName,
        function_version: context.functionVersion, memory_mb: context.memoryLimitInMB,
        log_group: context.logGroupName, log_stream: context.logStreamName,
        trace_id: process.env._X_AMZN_TRACE_ID ?? null, client_context: context.clientContext ?? null,
      };
    case 'env':
      return { ...Object.fromEntries(ENV_NAMES.map((n) => [n, process.env[n] ?? null])), cwd: process.cwd() };
    case 'fail':
      throw new Error('boom');
    case 'sleep':
      await new Promise((resolve) => setTimeout(resolve, 5000));
      return null;
    case 'log':
      console.log('conformance-log-line');
      return 'logged';
    case 'exit':
      process.exit(3);
    case 'count':
      return { count };
  }
'''

NODE_PRELUDE = f"let count = 0;\nconst ENV_NAMES = {ENV_NAMES};\n"
NODE_COMMONJS = NODE_PRELUDE + f"exports.handler = async function (event, context) {{{NODE_BODY}}};\n"
NODE_ESM = NODE_PRELUDE + f"export const handler = async (event, context) => {{{NODE_BODY}}};\n"

SHELL = r'''#!/bin/sh
# A custom runtime in POSIX shell: curl for HTTP, the host's /usr tools for the rest.
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
COUNT=0
echo "init: ${_HANDLER}"

header() { printf '%s\n' "$HEAD" | grep -i "^$1:" | head -n 1 | cut -d' ' -f2- | tr -d '\r'; }
value() { eval "set=\${$1+x}"; if [ -n "$set" ]; then eval "printf '\"%s\"' \"\${$1}\""; else printf null; fi; }
respond() {
  curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary "$2" "$API/invocation/$1/response"
}

while true; do
  # Headers and body from one response, without a file (/tmp is shared under process isolation).
  RESPONSE=$(curl -sS -i "$API/invocation/next")
  HEAD=$(printf '%s\n' "$RESPONSE" | sed '/^\r*$/q')
  EVENT=$(printf '%s\n' "$RESPONSE" | sed '1,/^\r*$/d')
  RID=$(header Lambda-Runtime-Aws-Request-Id)
  COUNT=$((COUNT + 1))
  case "$EVENT" in
    *'"op": "echo"'*) respond "$RID" "$EVENT" ;;
    *'"op": "context"'*)
      CC=$(header Lambda-Runtime-Client-Context)
      REMAINING=$(( $(header Lambda-Runtime-Deadline-Ms) - $(date +%s%3N) ))
      respond "$RID" "{\"request_id\": \"$RID\", \"invoked_arn\": \"$(header Lambda-Runtime-Invoked-Function-Arn)\",
        \"remaining_ms\": $REMAINING, \"function_name\": \"$AWS_LAMBDA_FUNCTION_NAME\",
        \"function_version\": \"$AWS_LAMBDA_FUNCTION_VERSION\", \"memory_mb\": \"$AWS_LAMBDA_FUNCTION_MEMORY_SIZE\",
        \"log_group\": \"$AWS_LAMBDA_LOG_GROUP_NAME\", \"log_stream\": \"$AWS_LAMBDA_LOG_STREAM_NAME\",
        \"trace_id\": \"$(header Lambda-Runtime-Trace-Id)\", \"client_context\": ${CC:-null}}" ;;
    *'"op": "env"'*)
      BODY="{\"cwd\": \"$(pwd)\""
      for NAME in @ENV_NAMES@; do BODY="$BODY, \"$NAME\": $(value "$NAME")"; done
      respond "$RID" "$BODY}" ;;
    *'"op": "fail"'*)
      curl -sS -o /dev/null -X POST -H 'Lambda-Runtime-Function-Error-Type: Custom.Boom' \
        --data-binary '{"errorMessage": "boom", "errorType": "Custom.Boom"}' "$API/invocation/$RID/error" ;;
    *'"op": "sleep"'*) sleep 5 ;;
    *'"op": "log"'*) echo "conformance-log-line"; respond "$RID" '"logged"' ;;
    *'"op": "exit"'*) exit 3 ;;
    *'"op": "count"'*) respond "$RID" "{\"count\": $COUNT}" ;;
  esac
done
'''.replace("@ENV_NAMES@", " ".join(ENV_NAMES))

C = r'''
/* A custom runtime in C: the Runtime API over plain sockets, one connection per request. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct sockaddr_in api;
static const char *env_names[] = {@ENV_NAMES@, NULL};

struct reply { int status; char head[16384]; char *body; };

static long long now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec * 1000LL + tv.tv_usec / 1000;
}

static void write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n <= 0) exit(70);
        data += n;
        len -= (size_t)n;
    }
}

static void call(const char *method, const char *path, const char *extra, const char *body, struct reply *r) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&api, sizeof api) != 0) exit(71);
    char head[1024];
    size_t len = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: api\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n",
                     method, path, extra, len);
    write_all(fd, head, (size_t)n);
    if (len) write_all(fd, body, len);
    size_t cap = 1 << 16, used = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (used == cap) buf = realloc(buf, (cap *= 2) + 1);
        ssize_t got = read(fd, buf + used, cap - used);
        if (got <= 0) break;
        used += (size_t)got;
    }
    close(fd);
    buf[used] = 0;
    char *end = strstr(buf, "\r\n\r\n");
    if (!end) exit(72);
    *end = 0;
    snprintf(r->head, sizeof r->head, "%s", buf);
    r->status = atoi(buf + 9);
    r->body = strdup(end + 4);
    free(buf);
}

static const char *header(const struct reply *r, const char *name, char *out, size_t size) {
    size_t len = strlen(name);
    out[0] = 0;
    for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, name, len) == 0 && line[2 + len] == ':') {
            const char *v = line + 3 + len;
            while (*v == ' ') v++;
            size_t n = strcspn(v, "\r");
            snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), v);
            break;
        }
    }
    return out;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char host[64];
    int port;
    if (sscanf(getenv("AWS_LAMBDA_RUNTIME_API"), "%63[^:]:%d", host, &port) != 2) return 2;
    api.sin_family = AF_INET;
    api.sin_port = htons((unsigned short)port);
    inet_pton(AF_INET, host, &api.sin_addr);
    printf("init: %s\n", getenv("_HANDLER"));
    int count = 0;
    for (;;) {
        struct reply next, done;
        call("GET", "/2018-06-01/runtime/invocation/next", "", NULL, &next);
        char rid[128], arn[512], deadline[32], trace[512], cc[4096], path[256];
        static char out[65536];
        header(&next, "Lambda-Runtime-Aws-Request-Id", rid, sizeof rid);
        snprintf(path, sizeof path, "/2018-06-01/runtime/invocation/%s/response", rid);
        const char *ev = next.body;
        count++;
        out[0] = 0;
        if (strstr(ev, "\"op\": \"echo\"")) {
            snprintf(out, sizeof out, "%s", ev);
        } else if (strstr(ev, "\"op\": \"context\"")) {
            header(&next, "Lambda-Runtime-Client-Context", cc, sizeof cc);
            snprintf(out, sizeof out,
                     "{\"request_id\": \"%s\", \"invoked_arn\": \"%s\", \"remaining_ms\": %lld, "
                     "\"function_name\": \"%s\", \"function_version\": \"%s\", \"memory_mb\": \"%s\", "
                     "\"log_group\": \"%s\", \"log_stream\": \"%s\", \"trace_id\": \"%s\", "
                     "\"client_context\": %s}",
                     rid, header(&next, "Lambda-Runtime-Invoked-Function-Arn", arn, sizeof arn),
                     atoll(header(&next, "Lambda-Runtime-Deadline-Ms", deadline, sizeof deadline)) - now_ms(),
                     getenv("AWS_LAMBDA_FUNCTION_NAME"), getenv("AWS_LAMBDA_FUNCTION_VERSION"),
                     getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), getenv("AWS_LAMBDA_LOG_GROUP_NAME"),
                     getenv("AWS_LAMBDA_LOG_STREAM_NAME"),
                     header(&next, "Lambda-Runtime-Trace-Id", trace, sizeof trace),
                     cc[0] ? cc : "null");
        } else if (strstr(ev, "\"op\": \"env\"")) {
            char cwd[512];
            size_t n = (size_t)snprintf(out, sizeof out, "{\"cwd\": \"%s\"", getcwd(cwd, sizeof cwd));
            for (const char **name = env_names; *name; name++) {
                const char *v = getenv(*name);
                n += (size_t)snprintf(out + n, sizeof out - n, v ? ", \"%s\": \"%s\"" : ", \"%s\": null", *name, v);
            }
            snprintf(out + n, sizeof out - n, "}");
        } else if (strstr(ev, "\"op\": \"fail\"")) {
            snprintf(path, sizeof path, "/2018-06-01/runtime/invocation/%s/error", rid);
            call("POST", path, "Lambda-Runtime-Function-Error-Type: Custom.Boom\r\n",
                 "{\"errorMessage\": \"boom\", \"errorType\": \"Custom.Boom\"}", &done);
            free(done.body);
        } else if (strstr(ev, "\"op\": \"sleep\"")) {
            sleep(5);
        } else if (strstr(ev, "\"op\": \"log\"")) {
            puts("conformance-log-line");
            snprintf(out, sizeof out, "\"logged\"");
        } else if (strstr(ev, "\"op\": \"exit\"")) {
            exit(3);
        } else if (strstr(ev, "\"op\": \"count\"")) {
            snprintf(out, sizeof out, "{\"count\": %d}", count);
        }
        if (out[0]) {
            call("POST", path, "Content-Type: application/json\r\n", out, &done);
            free(done.body);
        }
        free(next.body);
    }
}
'''.replace("@ENV_NAMES@", ", ".join(f'"{n}"' for n in ENV_NAMES))

RIC_BOOTSTRAP = "#!/bin/sh\nexec python3 -m awslambdaric \"$_HANDLER\"\n"


def compile_c(source: str, workdir: Path, static: bool = False) -> bytes:
    """Compile a bootstrap with the host's gcc (dynamically against its libc, or static)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise RuntimeError("no C compiler on this host (scripts/test installs gcc)")
    workdir.mkdir(parents=True, exist_ok=True)
    src, out = workdir / "bootstrap.c", workdir / ("bootstrap-static" if static else "bootstrap")
    src.write_text(source)
    subprocess.run([gcc, "-O2", "-Wall", "-o", str(out), str(src), *(["-static"] if static else [])],
                   check=True, capture_output=True, timeout=120)
    return out.read_bytes()


def host_python3() -> str | None:
    """`major.minor` of /usr/bin/python3: the `python3` a provided environment runs."""
    if not Path("/usr/bin/python3").exists():
        return None
    out = subprocess.run(["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.strip() or None


@functools.lru_cache(maxsize=1)
def vendored_awslambdaric(target: str) -> dict[str, bytes]:
    """awslambdaric and its dependencies from PyPI, as wheels for the host's /usr/bin/python3.

    The same version as the one the test extra installs (the built-in runtime's reference).
    Returns the files for the zip (path -> content).
    """
    version = host_python3()
    if version is None:
        raise RuntimeError("no /usr/bin/python3 on this host")
    ric = importlib.metadata.version("awslambdaric")
    folder = Path(target)
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
         "--target", str(folder), "--only-binary=:all:", "--implementation", "cp", "--python-version", version,
         "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
         "--platform", "manylinux_2_28_x86_64", f"awslambdaric=={ric}"],
        check=True, capture_output=True, timeout=600,
    )
    files: dict[str, bytes] = {}
    for path in folder.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            files[str(path.relative_to(folder))] = path.read_bytes()
    return files


@dataclass
class Kind:
    """A kind of runtime and how its formats differ from the others'."""

    name: str
    runtime: str
    handler: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    execution_env: str | None = None  # AWS_EXECUTION_ENV
    language_path: bool = True  # PATH starts with /var/lang/bin (managed runtimes)
    error: str = "python"  # python | node | custom: the error body's format
    log: str = "raw"  # raw | node: how a line the function writes appears in its log


def error_matches(kind: Kind, body: dict[str, Any], request_id: str) -> None:
    """The `fail` op's error body, in the runtime's own format."""
    if kind.error == "python":
        assert list(body) == ["errorMessage", "errorType", "requestId", "stackTrace"], body
        assert (body["errorMessage"], body["errorType"], body["requestId"]) == ("boom", "RuntimeError", request_id)
        assert body["stackTrace"][-1].startswith('  File "/var/task/app.py", line '), body
        assert 'raise RuntimeError("boom")' in body["stackTrace"][-1]
    elif kind.error == "node":
        assert list(body) == ["errorType", "errorMessage", "trace"], body
        assert (body["errorType"], body["errorMessage"]) == ("Error", "boom")
        assert body["trace"][0] == "Error: boom"
        assert "/var/task/index." in body["trace"][1], body["trace"]
    else:
        assert body == {"errorMessage": "boom", "errorType": "Custom.Boom"}


def log_line_matches(kind: Kind, line: str, request_id: str) -> bool:
    if kind.log == "node":
        parts = line.split("\t")
        return len(parts) == 4 and parts[1:] == [request_id, "INFO", "conformance-log-line"] and parts[0].endswith("Z")
    return line == "conformance-log-line"
