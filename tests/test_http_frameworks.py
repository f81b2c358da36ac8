"""Web frameworks behind a Function URL and behind an HTTP API route, with the real packages
packed into the function: a FastAPI app through Mangum, a Flask app through apig-wsgi, and an
Express app through @vendia/serverless-express (installed from the npm registry). Each app
is reached through both fronts, reading payload format 2.0 (URLs) and the HTTP API's format."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import Server, client_for, create_function
from test_function_urls import call, public_url
from test_http_apis import call as call_api
from test_http_apis import make_api

from bench.common import distribution_files

Front = Callable[..., requests.Response]


def fronts(lam: Any, server: Server, name: str, api_version: str) -> dict[str, Front]:
    """The function behind a public Function URL, and behind an HTTP API's `ANY /{proxy+}` route."""
    url = public_url(lam, name)
    gw = client_for(server.url, "apigatewayv2")
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    api_id = make_api(gw, lam, (name, arn), ["ANY /{proxy+}"], version=api_version)
    return {
        "url": lambda path, method="GET", **kw: call(server, url, path, method, **kw),
        f"http-api-{api_version}": lambda path, method="GET", **kw: call_api(server, api_id, path, method, **kw),
    }

FASTAPI_APP = '''
from fastapi import Cookie, FastAPI, Response
from mangum import Mangum
from pydantic import BaseModel

app = FastAPI()
PNG = bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + bytes(range(256))


class Item(BaseModel):
    name: str
    price: float


@app.get("/items/{item_id}")
def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@app.post("/items", status_code=201)
def create_item(item: Item):
    return {"created": item.name, "with_tax": round(item.price * 1.2, 2)}


@app.get("/image")
def image():
    return Response(content=PNG, media_type="image/png")


@app.get("/cookie")
def cookie(response: Response, session: str | None = Cookie(default=None)):
    response.set_cookie("seen", "yes")
    return {"session": session}


handler = Mangum(app, lifespan="off")
'''


def test_fastapi_through_mangum(lam: Any, server: Server) -> None:
    files = {"app.py": FASTAPI_APP, **distribution_files("fastapi", "mangum")}
    name = create_function(lam, files=files, Timeout=30, MemorySize=512)  # the tests' Python: compiled parts fit
    for front, send in fronts(lam, server, name, "2.0").items():
        got = send("/items/42", params={"q": "blue"})
        assert (got.status_code, got.json()) == (200, {"item_id": 42, "q": "blue"}), front
        created = send("/items", "POST", json={"name": "lamp", "price": 10})
        assert (created.status_code, created.json()) == (201, {"created": "lamp", "with_tax": 12.0}), front
        invalid = send("/items", "POST", json={"name": "lamp"})
        assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == ["body", "price"], front
        image = send("/image")
        assert (image.status_code, image.headers["content-type"]) == (200, "image/png"), front
        assert image.content == bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + bytes(range(256))
        cookie = send("/cookie", headers={"Cookie": "session=abc"})
        assert cookie.json() == {"session": "abc"} and cookie.cookies.get("seen") == "yes", front
        missing = send("/nowhere")
        assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"}), front


FLASK_APP = '''
from apig_wsgi import make_lambda_handler
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/hello/<name>")
def hello(name):
    return jsonify(greeting=f"hello {name}", lang=request.args.get("lang"))


@app.post("/echo")
def echo():
    return jsonify(received=request.get_json(), cookie=request.cookies.get("session")), 201


handler = make_lambda_handler(app, binary_support=True)
'''


def test_flask_through_apig_wsgi(lam: Any, server: Server) -> None:
    files = {"app.py": FLASK_APP, **distribution_files("flask", "apig-wsgi")}
    name = create_function(lam, files=files, Timeout=30, MemorySize=512)
    # payload 2.0 behind the URL, 1.0 behind the HTTP API
    for front, send in fronts(lam, server, name, "1.0").items():
        got = send("/hello/ana", params={"lang": "pt"})
        assert (got.status_code, got.json()) == (200, {"greeting": "hello ana", "lang": "pt"}), front
        echoed = send("/echo", "POST", json={"a": [1, 2]}, headers={"Cookie": "session=s1"})
        assert (echoed.status_code, echoed.json()) == (201, {"received": {"a": [1, 2]}, "cookie": "s1"}), front
        missing = send("/nowhere")
        assert missing.status_code == 404 and "Not Found" in missing.text, front


EXPRESS_APP = """
const serverlessExpress = require('@vendia/serverless-express');
const express = require('express');

const app = express();
app.use(express.json());
app.get('/items/:id', (req, res) => res.json({ id: req.params.id, q: req.query.q }));
app.post('/items', (req, res) => res.status(201).json({ created: req.body.name }));
app.get('/cookie', (req, res) => { res.cookie('seen', 'yes'); res.json({ cookie: req.headers.cookie ?? null }); });
// The app's own 404 (Express's default one trips over serverless-express's request object).
app.use((req, res) => res.status(404).json({ error: `no route for ${req.method} ${req.path}` }));

exports.handler = serverlessExpress({ app });
"""


def test_express_through_serverless_express(lam: Any, server: Server, tmp_path: Path) -> None:
    runtimes = requests.get(server.url + "/_lambdastack/health", timeout=5).json()["runtimes"]
    node = next((r for r in runtimes if r.startswith("nodejs")), None)
    if node is None or shutil.which("npm") is None:
        pytest.skip("no Node.js or npm on this host")
    subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "@vendia/serverless-express@4",
                    "express@4"], cwd=tmp_path, check=True, capture_output=True, timeout=300)
    files: dict[str, str | bytes] = {"index.js": EXPRESS_APP}
    for path in (tmp_path / "node_modules").rglob("*"):
        if path.is_file() and not path.is_symlink():
            files[str(path.relative_to(tmp_path))] = path.read_bytes()
    name = create_function(lam, files=files, handler="index.handler", runtime=node, Timeout=30, MemorySize=512)
    for front, send in fronts(lam, server, name, "1.0").items():
        got = send("/items/7", params={"q": "x"})
        assert (got.status_code, got.json()) == (200, {"id": "7", "q": "x"}), front
        created = send("/items", "POST", json={"name": "chair"})
        assert (created.status_code, created.json()) == (201, {"created": "chair"}), front
        cookie = send("/cookie", headers={"Cookie": "session=abc"})
        assert cookie.json() == {"cookie": "session=abc"} and cookie.cookies.get("seen") == "yes", front
        missing = send("/nowhere")
        assert (missing.status_code, missing.json()) == (404, {"error": "no route for GET /nowhere"}), front
