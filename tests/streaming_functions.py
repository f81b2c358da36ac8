"""Functions that stream their responses, for the response streaming tests and bench.

PYTHON_BOOTSTRAP is a custom runtime (`provided.al2023`) in Python's standard library that
posts every response in streaming mode, chunk by chunk, as Lambda's documentation for
custom runtimes describes it. What it does comes from the event:

  chunks      pieces to send, in order           pause   seconds between two pieces
  size        then this many bytes of b"x"       sleep   then sleep this long (past a timeout)
  fail        end with an error in the trailers  exit    end the process mid-stream (status 3)
  error_first post to .../error instead of streaming
  client_context  send the client context it was given as the only piece

NODE_STREAMING is a Node.js handler wrapped in `awslambda.streamifyResponse`: it writes the
event's `chunks` (with `pause` seconds between them), or pipes its `pipeline` pieces.
"""

from __future__ import annotations

PYTHON_BOOTSTRAP = r'''#!/usr/bin/env python3
import base64, http.client, json, os, time

HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
BASE = "/2018-06-01/runtime"


def piece(api, data):
    api.send(b"%x\r\n%s\r\n" % (len(data), data))


def finish(api, error=None):
    if error is None:
        api.send(b"0\r\n\r\n")
        return
    body = base64.b64encode(json.dumps(error).encode())
    api.send(b"0\r\nLambda-Runtime-Function-Error-Type: " + error["errorType"].encode()
             + b"\r\nLambda-Runtime-Function-Error-Body: " + body + b"\r\n\r\n")


while True:
    api = http.client.HTTPConnection(HOST, int(PORT))
    api.request("GET", BASE + "/invocation/next")
    reply = api.getresponse()
    rid = reply.getheader("Lambda-Runtime-Aws-Request-Id")
    client_context = reply.getheader("Lambda-Runtime-Client-Context")
    event = json.loads(reply.read())
    print("streaming for", rid, flush=True)
    if event.get("error_first"):
        api.request("POST", BASE + "/invocation/" + rid + "/error",
                    body=json.dumps({"errorMessage": "refused", "errorType": "Custom.Refused"}),
                    headers={"Lambda-Runtime-Function-Error-Type": "Custom.Refused"})
        api.getresponse().read()
        api.close()
        continue
    api.putrequest("POST", BASE + "/invocation/" + rid + "/response")
    api.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
    api.putheader("Transfer-Encoding", "chunked")
    api.putheader("Content-Type", event.get("content_type", "text/plain"))
    api.putheader("Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body")
    api.endheaders()
    pieces = [client_context or "none"] if event.get("client_context") else event.get("chunks", [])
    for i, text in enumerate(pieces):
        if i:
            time.sleep(event.get("pause", 0))
        piece(api, text.encode())
    left = event.get("size", 0)
    while left > 0:
        n = min(left, 65536)
        piece(api, b"x" * n)
        left -= n
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("exit"):
        os._exit(3)
    finish(api, {"errorMessage": "broken mid-stream", "errorType": "Custom.MidStream"} if event.get("fail") else None)
    answer = api.getresponse()
    answer.read()
    print("the Runtime API answered", answer.status, flush=True)
    api.close()
'''

NODE_STREAMING = r'''
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  if (event.pipeline) {
    await pipeline(Readable.from(event.pipeline), responseStream);
    return;
  }
  if (event.http) {
    responseStream = awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 201, headers: { 'x-custom': 'yes' }, cookies: ['a=b'],
    });
  } else {
    responseStream.setContentType('text/plain');
  }
  console.log('streaming for', context.awsRequestId, context.functionName);
  for (const [i, text] of (event.chunks ?? []).entries()) {
    if (i) await new Promise((resolve) => setTimeout(resolve, (event.pause ?? 0) * 1000));
    responseStream.write(text);
  }
  if (event.fail) throw new TypeError('broken mid-stream');
  if (event.sleep) await new Promise((resolve) => setTimeout(resolve, event.sleep * 1000));
  responseStream.end();
});
'''

NODE_NOT_ASYNC = r'''
exports.handler = awslambda.streamifyResponse((event, responseStream) => {
  responseStream.write('written by a plain function');
});
'''
