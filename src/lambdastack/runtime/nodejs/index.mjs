// lambdastack's Node.js runtime: `node /var/runtime/index.mjs` with the handler in `_HANDLER`.
//
// It loads the handler (init), then loops: take the next event from the Runtime API, call
// the handler with (event, context, callback), post what it returns, throws or passes to
// the callback. An async handler answers when its promise settles; a callback handler
// when the event loop is empty (unless callbackWaitsForEmptyEventLoop is false); a plain
// function that does neither answers null once the event loop is empty, as on Lambda.
// Uncaught exceptions and unhandled rejections fail the invocation (or the init) and end
// the process, so that the environment is replaced. A handler wrapped in
// awslambda.streamifyResponse streams its response instead (see streaming.mjs).

import { RuntimeApiClient } from './client.mjs';
import { attachInvocation, callbackContext, onBeforeExit, setBeforeExit } from './context.mjs';
import { NodeJsExit, UnhandledPromiseRejection } from './errors.mjs';
import { highWaterMark, isAsync, isStreaming, loadHandler } from './loader.mjs';
import { logError, patchConsole, setInvocation } from './logging.mjs';
import { createResponseStream, streamingContext } from './streaming.mjs';

patchConsole();
const client = new RuntimeApiClient(process.env.AWS_LAMBDA_RUNTIME_API);

// What a crash means depends on the phase: before the first event it fails the init.
let onUncaughtException = (error) => client.postInitError(error, () => process.exit(129));
let onUnhandledRejection = (error) => client.postInitError(error, () => process.exit(128));

process.on('uncaughtException', (error) => {
  logError('Uncaught Exception', error);
  onUncaughtException(error);
});
process.on('unhandledRejection', (reason, promise) => {
  const error = new UnhandledPromiseRejection(reason, promise);
  logError('Unhandled Promise Rejection', error);
  onUnhandledRejection(error);
});
process.on('beforeExit', onBeforeExit);

function isPromise(value) {
  return value && typeof value.then === 'function';
}

function main(handler) {
  const handlerIsAsync = isAsync(handler);
  const scheduleNext = () => setImmediate(isStreaming(handler) ? iterateStreaming : iterate);

  function failOnCrash(id) {
    onUncaughtException = (error) => client.postError(error, id, () => process.exit(129));
    onUnhandledRejection = (error) => client.postError(error, id, () => process.exit(128));
  }

  function answerAtEmptyEventLoop(id, markCompleted) {
    setBeforeExit(() => {
      markCompleted();
      if (handlerIsAsync) {
        const error = new NodeJsExit();
        logError('Invoke Error', error);
        client.postError(error, id, scheduleNext);
      } else {
        client.postResponse(null, id, scheduleNext);
      }
    });
  }

  /** The next event, with its request id set as the one logs belong to. */
  async function nextInvocation() {
    let invocation;
    try {
      invocation = await client.next();
    } catch (error) {
      console.log(`Unexpected Top Level Error: ${error.toString()}`);
      process.exit(1);
    }
    const { body, headers } = invocation;
    const id = headers['lambda-runtime-aws-request-id'];
    setInvocation(id, headers['lambda-runtime-aws-tenant-id']);
    return { body, headers, id };
  }

  async function iterateStreaming() {
    const { body, headers, id } = await nextInvocation();
    failOnCrash(id);
    setBeforeExit(() => {});
    const { stream, done, fail } = createResponseStream(client, id, highWaterMark(handler));
    try {
      const context = attachInvocation(streamingContext(), headers);
      const result = handler(JSON.parse(body), stream, context);
      if (!isPromise(result)) throw new Error('Streaming does not support non-async handlers.');
      if ((await result) !== undefined) console.warn('Streaming handlers ignore return values.');
      await done;
      if (!stream.writableFinished) throw new Error('Response stream is not finished.');
    } catch (error) {
      logError('Invoke Error', error);
      await fail(error);
    }
    scheduleNext();
  }

  async function iterate() {
    const { body, headers, id } = await nextInvocation();
    const [callback, context, markCompleted] = callbackContext(client, id, scheduleNext);
    try {
      failOnCrash(id);
      answerAtEmptyEventLoop(id, markCompleted);
      attachInvocation(context, headers);
      const result = handler(JSON.parse(body), context, callback);
      if (isPromise(result)) {
        result.then(context.succeed, context.fail).catch(context.fail);
      }
    } catch (error) {
      callback(error);
    }
  }

  scheduleNext();
}

let handler;
try {
  handler = await loadHandler(process.env.LAMBDA_TASK_ROOT || process.cwd(), process.env._HANDLER || '');
} catch (error) {
  logError('Uncaught Exception', error);
  client.postInitError(error, () => process.exit(129));
}
if (handler !== undefined) main(handler);
