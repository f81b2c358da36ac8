// The Runtime API client: one keep-alive connection to $AWS_LAMBDA_RUNTIME_API.
//
// `next` long-polls without a timeout (the environment is frozen while it waits). Results
// and errors are posted on the same connection; the callback runs once the API answered.

import http from 'node:http';
import { errorBody } from './errors.mjs';

const BASE = '/2018-06-01/runtime';
const ERROR_TYPE = 'Lambda-Runtime-Function-Error-Type';
const HEADER_SAFE = /^[\x20-\x7e]*$/;

/** JSON text of a result; `undefined` is sent as null. */
function serialize(value) {
  try {
    return JSON.stringify(value === undefined ? null : value);
  } catch {
    throw new Error('Unable to stringify response body');
  }
}

export class RuntimeApiClient {
  constructor(address) {
    const [hostname, port] = address.split(':');
    // Free keep-alive sockets are unreferenced by the agent: they never hold the event loop open.
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    this.hostname = hostname;
    this.port = parseInt(port, 10);
    this.nextOptions = { hostname, port: this.port, path: `${BASE}/invocation/next`, method: 'GET', agent: this.agent };
  }

  /** The next event: resolves to {body: string, headers}; rejects if the API fails. */
  next() {
    return new Promise((resolve, reject) => {
      const request = http.request(this.nextOptions, (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('end', () => {
          if (response.statusCode !== 200) {
            reject(new Error(`Failed to get next invocation, status ${response.statusCode}`));
            return;
          }
          const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
          resolve({ body: body.toString('utf8'), headers: response.headers });
        });
        response.on('error', reject);
      });
      request.on('error', reject);
      request.end();
    });
  }

  /** Post a handler's result; throws (synchronously) if it cannot be serialized. */
  postResponse(result, id, callback) {
    this._post(`${BASE}/invocation/${encodeURIComponent(id)}/response`, serialize(result), undefined, callback);
  }

  postError(error, id, callback) {
    const body = errorBody(error);
    this._post(`${BASE}/invocation/${encodeURIComponent(id)}/error`, serialize(body), body.errorType, callback);
  }

  postInitError(error, callback) {
    const body = errorBody(error);
    this._post(`${BASE}/init/error`, serialize(body), body.errorType, callback);
  }

  _post(path, text, errorType, callback) {
    const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) };
    if (typeof errorType === 'string' && HEADER_SAFE.test(errorType)) headers[ERROR_TYPE] = errorType;
    const request = http.request(
      { hostname: this.hostname, port: this.port, path, method: 'POST', headers, agent: this.agent },
      (response) => {
        response.on('end', callback);
        response.resume();
      },
    );
    request.on('error', (e) => {
      // The Runtime API is gone: the environment is being torn down.
      console.error(`Runtime API request failed: ${e.message}`);
      process.exit(1);
    });
    request.end(text);
  }
}
