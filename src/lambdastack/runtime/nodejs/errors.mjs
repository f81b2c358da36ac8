// The errors the runtime raises, and how errors travel: as the Runtime API body
// ({"errorType", "errorMessage", "trace"}) and as the JSON in text log lines.

import { types } from 'node:util';

export class ImportModuleError extends Error {}
export class HandlerNotFound extends Error {}
export class MalformedHandlerName extends Error {}
export class UserCodeSyntaxError extends Error {}

export class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a ' +
        'Promise that was never settled. For more information, see ' +
        'https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}

export class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}

// Lambda names these `Runtime.<Class>`, both in error bodies and in stack traces.
for (const cls of [
  ImportModuleError, HandlerNotFound, MalformedHandlerName, UserCodeSyntaxError, NodeJsExit, UnhandledPromiseRejection,
]) {
  cls.prototype.name = `Runtime.${cls.name}`;
}

const DEL = /\x7F/g;

function looksLikeError(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.name === 'string' && value.name !== '' &&
    typeof value.message === 'string' && value.message !== '' &&
    typeof value.stack === 'string' && value.stack !== ''
  );
}

/** The body posted to `.../error` and `/init/error`: what a caller of Invoke receives. */
export function errorBody(error) {
  try {
    if (types.isNativeError(error) || looksLikeError(error)) {
      return {
        errorType: error.name?.replace(DEL, '%7F'),
        errorMessage: error.message?.replace(DEL, '%7F'),
        trace: error.stack.replace(DEL, '%7F').split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its ' +
        'message, name, and stack',
    };
  }
}

export function asError(value) {
  return value instanceof Error ? value : new Error(value);
}

function withVisibleFields(_key, value) {
  if (!(value instanceof Error)) return value;
  const out = Object.assign({ errorType: value.name, errorMessage: value.message, code: value.code }, value);
  if (typeof value.stack === 'string') out.stack = value.stack.split('\n');
  return out;
}

/** An error as text logs show it after `Invoke Error` / `Uncaught Exception`: a tab, then JSON. */
export function formatForLog(error) {
  try {
    return '\t' + JSON.stringify(error, withVisibleFields);
  } catch {
    return '\t' + JSON.stringify(errorBody(error));
  }
}
