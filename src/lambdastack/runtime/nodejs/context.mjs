// The context object and the callback of one invocation.
//
// `callback(err, result)` answers once the event loop is empty, unless the function set
// `context.callbackWaitsForEmptyEventLoop = false`; `context.done/succeed/fail` answer at
// once. Only the first of these calls counts.

import { logError } from './logging.mjs';

const NOTHING = () => {};
let beforeExitListener = NOTHING;

/** Run from process 'beforeExit': the event loop became empty. */
export function onBeforeExit() {
  beforeExitListener();
}

export function setBeforeExit(listener) {
  beforeExitListener = listener;
}

const env = process.env;
const environmentData = {
  functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
  functionName: env.AWS_LAMBDA_FUNCTION_NAME,
  memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
  logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
  logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
};

function firstCallOnly(fn, state) {
  return function (...args) {
    if (!state.finished) {
      fn(...args);
      state.finished = true;
    }
  };
}

/**
 * The callback and the context's callback part for invocation `id`.
 * Returns [callback, context, markCompleted].
 */
export function callbackContext(client, id, scheduleNext) {
  let completed = false;
  let waitForEmptyEventLoop = true;

  const postError = (error, then) => {
    logError('Invoke Error', error);
    client.postError(error, id, then);
  };
  const complete = (result, then) => {
    if (completed) {
      console.error(
        'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
      );
      return;
    }
    completed = true;
    client.postResponse(result, id, then);
  };
  const callback = (error, result) => {
    beforeExitListener = NOTHING;
    if (error !== undefined && error !== null) {
      postError(error, scheduleNext);
    } else if (!waitForEmptyEventLoop) {
      complete(result, scheduleNext);
    } else {
      beforeExitListener = () => setImmediate(() => complete(result, scheduleNext));
    }
  };
  const done = (error, result) => {
    beforeExitListener = NOTHING;
    if (error !== undefined && error !== null) postError(error, scheduleNext);
    else complete(result, scheduleNext);
  };
  const state = { finished: false };
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: firstCallOnly((result) => done(null, result), state),
    fail: firstCallOnly((error) => done(error === undefined || error === null ? 'handled' : error, null), state),
    done: firstCallOnly(done, state),
  };
  return [firstCallOnly(callback, state), context, () => (completed = true)];
}

function parseHeader(text, name) {
  if (text === undefined) return undefined;
  try {
    // Node reads header bytes as Latin-1; the Runtime API sends UTF-8.
    return JSON.parse(Buffer.from(text, 'latin1').toString('utf8'));
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

/** Complete the context with the function's settings and the invocation's headers. */
export function attachInvocation(context, headers) {
  const trace = headers['lambda-runtime-trace-id'];
  if (trace) env._X_AMZN_TRACE_ID = trace;
  else delete env._X_AMZN_TRACE_ID;
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  return Object.assign(context, environmentData, {
    clientContext: parseHeader(headers['lambda-runtime-client-context'], 'ClientContext'),
    identity: parseHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    tenantId: headers['lambda-runtime-aws-tenant-id'],
    getRemainingTimeInMillis() {
      return deadline - Date.now();
    },
  });
}
