// Finding the handler named by `_HANDLER` (`[dir/]file.export[.nested]`) in the function's code.
//
// As on Lambda: `file` is tried as written, then `file.js` (CommonJS unless the nearest
// package.json says "type": "module"), `file.mjs` (ES module), `file.cjs`, and finally as a
// module name resolved from the task root (node_modules). Syntax errors and missing modules
// become Runtime.UserCodeSyntaxError and Runtime.ImportModuleError; anything else thrown
// while loading is reported as it is.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { HandlerNotFound, ImportModuleError, MalformedHandlerName, UserCodeSyntaxError } from './errors.mjs';
import { HttpResponseStream } from './streaming.mjs';

const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HIGH_WATER_MARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');

// Errors of a failed `require` name this file in their "Require stack", as Lambda's do.
const require = createRequire(new URL('./index.mjs', import.meta.url));

function requireIfExists(file) {
  return existsSync(file) ? require(file) : undefined;
}

async function importIfExists(file) {
  return existsSync(file) ? import(pathToFileURL(file).href) : undefined;
}

/** Whether the package.json nearest to `folder` declares "type": "module". */
function typeModule(folder) {
  for (;;) {
    if (folder.endsWith('/node_modules')) return false;
    const manifest = path.join(folder, 'package.json');
    if (existsSync(manifest)) {
      try {
        return JSON.parse(readFileSync(manifest, 'utf8'))?.type === 'module';
      } catch (e) {
        console.warn(`${manifest} cannot be read, it will be ignored for ES module detection purposes.`, e);
        return false;
      }
    }
    const parent = path.dirname(folder);
    if (parent === folder) return false;
    folder = parent;
  }
}

async function loadModule(appRoot, moduleRoot, name) {
  const base = path.resolve(appRoot, moduleRoot, name);
  const asWritten = requireIfExists(base);
  if (asWritten) return asWritten;
  const esm = existsSync(base + '.js') && typeModule(path.dirname(base + '.js'));
  if (!esm) {
    const commonjs = requireIfExists(base + '.js');
    if (commonjs) return commonjs;
  }
  const loaded =
    (esm && (await importIfExists(base + '.js'))) ||
    (await importIfExists(base + '.mjs')) ||
    requireIfExists(base + '.cjs');
  if (loaded) return loaded;
  return require(require.resolve(name, { paths: [appRoot, moduleRoot] }));
}

function installGlobals() {
  const off = process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (off === '1' || off === 'true') return;
  globalThis.awslambda = {
    streamifyResponse(handler, options) {
      handler[STREAMING] = 'response';
      if (typeof options?.highWaterMark === 'number') handler[HIGH_WATER_MARK] = parseInt(options.highWaterMark);
      return handler;
    },
    HttpResponseStream,
  };
}

/** The handler function; throws Lambda's Runtime.* errors when it cannot be had. */
export async function loadHandler(appRoot, handlerString) {
  if (handlerString.includes('..')) {
    throw new MalformedHandlerName(
      `'${handlerString}' is not a valid handler name. Use absolute paths when specifying root directories in ` +
        'handler names.',
    );
  }
  const leaf = path.basename(handlerString);
  const moduleRoot = handlerString.substring(0, handlerString.indexOf(leaf));
  const match = /^([^.]*)\.(.*)$/.exec(leaf);
  if (!match) throw new MalformedHandlerName('Bad handler');
  const [, name, exportPath] = match;

  installGlobals();
  let loaded;
  try {
    loaded = await loadModule(appRoot, moduleRoot, name);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e?.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e;
  }
  const handler = exportPath.split('.').reduce((value, key) => value && value[key], loaded);
  if (!handler) throw new HandlerNotFound(`${handlerString} is undefined or not exported`);
  if (typeof handler !== 'function') throw new HandlerNotFound(`${handlerString} is not a function`);
  return handler;
}

export function isAsync(handler) {
  return handler?.constructor?.name === 'AsyncFunction';
}

export function isStreaming(handler) {
  return handler[STREAMING] === 'response';
}

/** The `highWaterMark` given to streamifyResponse, if any. */
export function highWaterMark(handler) {
  const value = parseInt(handler[HIGH_WATER_MARK]);
  return Number.isNaN(value) ? undefined : value;
}
