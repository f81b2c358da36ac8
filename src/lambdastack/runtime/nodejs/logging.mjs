// console.* as Lambda's Node.js runtime formats it.
//
// Text (default): `<ISO timestamp>\t<request id>\t<LEVEL>\t<util.format(args)>`, one line per
// call (newlines become \r so that a message stays one log event); the request id is
// `undefined` during init. JSON (`AWS_LAMBDA_LOG_FORMAT=JSON`): one object per call with
// timestamp, level, requestId and message. `AWS_LAMBDA_LOG_LEVEL` drops the levels below it.

import { format } from 'node:util';
import { asError, formatForLog } from './errors.mjs';

const LEVELS = {
  TRACE: { name: 'TRACE', priority: 1 },
  DEBUG: { name: 'DEBUG', priority: 2 },
  INFO: { name: 'INFO', priority: 3 },
  WARN: { name: 'WARN', priority: 4 },
  ERROR: { name: 'ERROR', priority: 5 },
  FATAL: { name: 'FATAL', priority: 6 },
};

let requestId;
let tenantId;

export function setInvocation(id, tenant) {
  requestId = id;
  tenantId = tenant;
}

const NEWLINES = /\n/g;
const out = process.stdout;

// Like Lambda's, `console.log()` with no argument logs `undefined`: the first argument is always there.
function writeText(level, message, params) {
  const line = `${new Date().toISOString()}\t${requestId}\t${level.name}\t${format(message, ...params)}`;
  out.write(line.replace(NEWLINES, '\r') + '\n');
}

function describeError(_key, value) {
  if (!(value instanceof Error)) return value;
  return Object.assign(
    {
      errorType: value?.constructor?.name ?? 'UnknownError',
      errorMessage: value.message,
      stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
    },
    value,
  );
}

function jsonRecord(level, message, params) {
  const args = [message, ...params];
  const record = { timestamp: new Date().toISOString(), level: level.name, requestId };
  if (tenantId !== undefined && tenantId !== null) record.tenantId = tenantId;
  if (args.length === 1) {
    record.message = args[0];
    try {
      return JSON.stringify(record, describeError);
    } catch {
      record.message = format(record.message);
      return JSON.stringify(record);
    }
  }
  record.message = format(...args);
  const error = args.find((arg) => arg instanceof Error);
  if (error !== undefined) {
    record.errorType = error?.constructor?.name ?? 'UnknownError';
    record.errorMessage = error.message;
    record.stackTrace = typeof error.stack === 'string' ? error.stack.split('\n') : [];
  }
  return JSON.stringify(record);
}

function writeJson(level, message, params) {
  out.write(jsonRecord(level, message, params).replace(NEWLINES, '\r') + '\n');
}

const json = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';

/** Log an error the runtime caught (`Invoke Error`, `Uncaught Exception`, ...). */
export const logError = json
  ? (_label, error) => console.error(asError(error))
  : (label, error) => console.error(label, formatForLog(asError(error)));

export function patchConsole() {
  const write = json ? writeJson : writeText;
  const threshold = (LEVELS[(process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] ?? LEVELS.TRACE).priority;
  const method = (level) =>
    level.priority >= threshold ? (message, ...params) => write(level, message, params) : () => {};
  console.trace = method(LEVELS.TRACE);
  console.debug = method(LEVELS.DEBUG);
  console.info = method(LEVELS.INFO);
  console.log = console.info;
  console.warn = method(LEVELS.WARN);
  console.error = method(LEVELS.ERROR);
  console.fatal = (message, ...params) => write(LEVELS.FATAL, message, params);
}
