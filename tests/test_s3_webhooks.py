"""Uploads to self-hosted S3-compatible stores: their webhook notifications (MinIO's and Ceph
RGW's formats, as their documentation shows them) run a function asynchronously with the S3
event records, behind a token."""

from __future__ import annotations

import json
from typing import Any

import requests
from helpers import Server, create_function, stored_log, wait_for

PRINTER = 'import json\ndef handler(event, context):\n    print("EVENT " + json.dumps(event))\n'
TOKEN = "s3cr3t-webhook-token"


def s3_record(bucket: str, key: str, source: str = "minio:s3") -> dict[str, Any]:
    return {
        "eventVersion": "2.0", "eventSource": source, "awsRegion": "", "eventTime": "2026-12-04T10:00:00.000Z",
        "eventName": "s3:ObjectCreated:Put", "userIdentity": {"principalId": "minioadmin"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"}, "responseElements": {},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "Config",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "minioadmin"},
                          "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": key, "size": 42, "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                          "contentType": "image/png", "sequencer": "17A8D0F1E6C3B9A2"}},
    }


def events(server: Server, lam: Any, name: str) -> list[Any]:
    lines = [line for stream in stored_log(server, lam, name).values() for line in stream if line.startswith("EVENT ")]
    return [json.loads(line[len("EVENT "):]) for line in lines]


def test_minio_and_ceph_notifications_run_the_function(private_server: Any) -> None:
    server: Server = private_server("--s3-webhook-token", TOKEN)
    lam = server.client()
    name = create_function(lam, PRINTER)
    route = f"{server.url}/_lambdastack/s3-events/{name}"

    minio = {"EventName": "s3:ObjectCreated:Put", "Key": "photos/cat.png",
             "Records": [s3_record("photos", "cat.png")]}
    r = requests.post(route, json=minio, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert (r.status_code, r.json()) == (202, {"queued": 1})
    ceph = {"Records": [s3_record("docs", "a.txt", source="ceph:s3"), s3_record("docs", "b.txt", source="ceph:s3")]}
    r = requests.post(route + f"?token={TOKEN}", json=ceph, timeout=10)
    assert (r.status_code, r.json()) == (202, {"queued": 2})
    assert wait_for(lambda: len(events(server, lam, name)) == 2, timeout=30)
    got = sorted((e["Records"][0]["s3"]["bucket"]["name"], len(e["Records"])) for e in events(server, lam, name))
    assert got == [("docs", 2), ("photos", 1)]
    [photos] = [e for e in events(server, lam, name) if e["Records"][0]["s3"]["bucket"]["name"] == "photos"]
    assert set(photos) == {"Records"} and photos["Records"][0]["s3"]["object"]["key"] == "cat.png"

    assert requests.post(route, json=minio, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 403
    assert requests.post(route, json=minio, timeout=10).status_code == 403
    assert requests.post(route, data=b"not json", headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=10).status_code == 400
    assert requests.post(route, json={"hello": "world"}, headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=10).status_code == 400
    missing = requests.post(f"{server.url}/_lambdastack/s3-events/no-such-function", json=minio,
                            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert missing.status_code == 404 and "no-such-function" in missing.json()["message"]
    # A store's test notification (no records) is answered and runs nothing.
    assert requests.post(route, json={"Records": []}, headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=10).json() == {"queued": 0}


def test_the_route_is_closed_without_a_token(server: Server) -> None:
    r = requests.post(f"{server.url}/_lambdastack/s3-events/anything", json={"Records": []}, timeout=10)
    assert r.status_code == 404 and "--s3-webhook-token" in r.json()["message"]
