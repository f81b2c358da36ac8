// Response streaming, as Lambda's Node.js runtime offers it.
//
// A handler wrapped in `awslambda.streamifyResponse(handler)` is called as
// `handler(event, responseStream, context)`. `responseStream` is a writable stream posting
// the invocation's response to the Runtime API in streaming mode (chunked, with
// `Lambda-Runtime-Function-Response-Mode: streaming`); each write goes out as it is made.
// An error after the first bytes is sent as the trailers `Lambda-Runtime-Function-Error-Type`
// and `Lambda-Runtime-Function-Error-Body` (base64 of the error body). The handler must be
// async and must end the stream. `awslambda.HttpResponseStream.from(stream, metadata)`
// prefixes the body with the JSON metadata and 8 NUL bytes, the
// `application/vnd.awslambda.http-integration-response` format function URLs read.

import http from 'node:http';
import net from 'node:net';
import { errorBody } from './errors.mjs';

const RESPONSE_MODE = 'Lambda-Runtime-Function-Response-Mode';
const ERROR_TYPE = 'Lambda-Runtime-Function-Error-Type';
const ERROR_BODY = 'Lambda-Runtime-Function-Error-Body';
const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
const HTTP_INTEGRATION = 'application/vnd.awslambda.http-integration-response';
const DELIMITER_LENGTH = 8;

export class InvalidStreamingOperation extends Error {}
InvalidStreamingOperation.prototype.name = 'Runtime.InvalidStreamingOperation';

export class HttpResponseStream {
  static from(stream, metadata) {
    stream.setContentType(HTTP_INTEGRATION);
    const prelude = JSON.stringify(metadata); // JSON text never holds a NUL byte
    stream._onBeforeFirstWrite = (write) => {
      write(prelude);
      write(new Uint8Array(DELIMITER_LENGTH));
    };
    return stream;
  }
}

// What of the request the handler may use: a writable stream, nothing of the HTTP client.
const METHODS = [
  'cork', 'destroy', 'end', 'uncork', 'write', 'setContentType',
  'addListener', 'on', 'once', 'prependListener', 'prependOnceListener', 'off', 'removeListener',
  'removeAllListeners', 'setMaxListeners', 'getMaxListeners', 'listeners', 'rawListeners', 'listenerCount',
  'eventNames', 'emit',
];
const READ_WRITE = ['destroyed', '_onBeforeFirstWrite'];
const READ_ONLY = [
  'writableFinished', 'writableObjectMode', 'writableEnded', 'writableNeedDrain', 'writableHighWaterMark',
  'writableCorked', 'writableLength', 'writable',
];

function writableOnly(inner) {
  const stream = {};
  for (const name of METHODS) stream[name] = inner[name].bind(inner);
  for (const name of READ_WRITE) {
    Object.defineProperty(stream, name, { get: () => inner[name], set: (v) => { inner[name] = v; } });
  }
  for (const name of READ_ONLY) Object.defineProperty(stream, name, { get: () => inner[name] });
  return stream;
}

/**
 * The response stream of invocation `id`.
 * Returns {stream, done, fail}: `done` settles when the Runtime API has answered the post;
 * `fail(error)` ends the stream with the error in its trailers.
 */
export function createResponseStream(client, id, highWaterMark) {
  let written = false;
  const agent = client.agent;
  if (typeof highWaterMark === 'number') {
    agent.createConnection = (options, listener) => net.createConnection({ ...options, highWaterMark }, listener);
  }
  let resolveDone;
  let rejectDone;
  const done = new Promise((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  done.catch(() => {}); // the failure is reported through `fail`, or by the runtime ending
  const req = http.request({
    hostname: client.hostname,
    port: client.port,
    path: `/2018-06-01/runtime/invocation/${encodeURIComponent(id)}/response`,
    method: 'POST',
    agent,
    headers: {
      [RESPONSE_MODE]: 'streaming',
      Trailer: [ERROR_TYPE, ERROR_BODY],
      'Content-Type': DEFAULT_CONTENT_TYPE,
      'Transfer-Encoding': 'chunked',
    },
  }, (res) => {
    res.on('aborted', rejectDone);
    res.on('end', () => resolveDone(res.statusCode));
    res.resume();
  });
  req.on('error', (error) => {
    rejectDone(error);
    req.destroy(error);
  });
  req.setContentType = (contentType) => {
    if (written) throw new InvalidStreamingOperation('Cannot set content-type, too late.');
    req.setHeader('Content-Type', contentType);
  };
  const write = req.write.bind(req);
  req.write = (chunk, encoding, callback) => {
    let data = chunk;
    if (typeof chunk !== 'string' && !Buffer.isBuffer(chunk) && !(chunk instanceof Uint8Array)) {
      data = JSON.stringify(chunk);
    }
    if (!written && typeof req._onBeforeFirstWrite === 'function') req._onBeforeFirstWrite((piece) => write(piece));
    written = true;
    return write(data, encoding, callback);
  };
  const fail = (error) =>
    new Promise((resolve) => {
      const body = errorBody(error);
      try {
        req.addTrailers({
          [ERROR_TYPE]: body.errorType,
          [ERROR_BODY]: Buffer.from(JSON.stringify(body)).toString('base64'),
        });
        req.end(resolve);
      } catch {
        resolve(); // the request is gone already (the Runtime API refused it)
      }
    });
  return { stream: writableOnly(req), done, fail };
}

/** The context part of a streaming invocation (no callback, no done/succeed/fail). */
export function streamingContext() {
  let waitForEmptyEventLoop = true;
  return {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
  };
}
