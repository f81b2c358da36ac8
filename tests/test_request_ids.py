"""Request ids and untraced trace headers, as a caller and a function see them: uuid4-shaped
request ids (the response header, `context.aws_request_id`), X-Ray-shaped trace headers, and no
repeats across invocations, nor between a process and one it forks."""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

from helpers import create_function, invoke

from lambdastack import ids

SEES_IDS = """
import os

def handler(event, context):
    return {"trace": os.environ.get("_X_AMZN_TRACE_ID"), "request_id": context.aws_request_id}
"""
TRACE = re.compile(r"Root=1-([0-9a-f]{8})-([0-9a-f]{24});Parent=([0-9a-f]{16});Sampled=0")


def test_request_ids_are_uuid4_and_trace_headers_fresh(plain_lam: Any) -> None:
    name = create_function(plain_lam, SEES_IDS)
    request_ids: set[str] = set()
    roots: set[str] = set()
    for _ in range(40):
        r = invoke(plain_lam, name, {})
        assert r.status == 200 and r.function_error is None, r.payload
        rid = r.result["request_id"]
        assert rid == r.request_id
        parsed = uuid.UUID(rid)
        assert str(parsed) == rid and parsed.version == 4 and parsed.variant == uuid.RFC_4122
        found = TRACE.fullmatch(r.result["trace"])
        assert found is not None, r.result["trace"]
        request_ids.add(rid)
        roots.add(found.group(2))
    assert len(request_ids) == 40 and len(roots) == 40


def test_a_forked_process_draws_other_ids() -> None:
    ids.request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.write(write, f"{ids.request_id()} {ids.random_hex(24)}".encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 200).decode().split()
    os.close(read)
    assert child != [ids.request_id(), ids.random_hex(24)]
