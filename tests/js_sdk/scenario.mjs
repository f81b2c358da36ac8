// A user's session with the AWS SDK for JavaScript v3 (@aws-sdk/client-lambda), pointed at
// lambdastack by its endpoint only. Run by tests/test_js_sdk_scenario.py:
//
//   node scenario.mjs CONFIG.json
//
// CONFIG names the endpoint, the SDK's install folder (`sdkDir`, holding node_modules), the
// runtimes and the zips the test built. Each step prints one JSON line {step, ok, detail};
// a step that fails does not stop the others (a step that needs an earlier one fails too).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const require = createRequire(join(config.sdkDir, 'package.json'));
const sdk = require('@aws-sdk/client-lambda');

const client = new sdk.LambdaClient({
  endpoint: config.endpoint,
  region: config.region,
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
  maxAttempts: 1, // one request per call: the test sees exactly what the server answered
});
const zip = (key) => new Uint8Array(readFileSync(config.zips[key]));
const text = (bytes) => new TextDecoder().decode(bytes);
const json = (bytes) => JSON.parse(text(bytes));
const waiter = { client, maxWaitTime: 60, minDelay: 1, maxDelay: 2 };

class StepFailed extends Error {}

function check(condition, detail) {
  if (!condition) throw new StepFailed(typeof detail === 'string' ? detail : JSON.stringify(detail));
}

let failures = 0;

async function step(name, body) {
  let line;
  try {
    const detail = await body();
    line = { step: name, ok: true, detail: detail ?? '' };
  } catch (error) {
    failures += 1;
    const detail = error instanceof StepFailed
      ? error.message
      : `${error.name}: ${error.message} (HTTP ${error.$metadata?.httpStatusCode})`;
    line = { step: name, ok: false, detail };
  }
  process.stdout.write(JSON.stringify(line) + '\n');
}

// The error a call must fail with, as a user's code tells it: its name, its HTTP status, its class.
async function expectError(call, name, status, messagePart) {
  try {
    await call();
  } catch (error) {
    check(error.name === name, { expected: name, got: error.name, message: error.message });
    check(error.$metadata?.httpStatusCode === status,
      { expected: status, got: error.$metadata?.httpStatusCode, name: error.name });
    check(error.$fault === (status >= 500 ? 'server' : 'client'), { fault: error.$fault });
    check(typeof error.message === 'string' && error.message.length > 0, 'the error has no message');
    if (messagePart !== undefined) check(error.message.includes(messagePart), { message: error.message });
    if (sdk[name] !== undefined) check(error instanceof sdk[name], `not an instance of the SDK's ${name}`);
    check(typeof error.$metadata?.requestId === 'string' && error.$metadata.requestId.length > 0,
      'no request id in the error metadata');
    return `${error.name} ${error.$metadata.httpStatusCode}: ${error.message}`;
  }
  throw new StepFailed(`the call succeeded; ${name} (${status}) was expected`);
}

const name = config.functionName;
const streamer = `${name}-stream`;
const failing = `${name}-fails`;
const send = (command) => client.send(command);

await step('CreateFunction', async () => {
  const created = await send(new sdk.CreateFunctionCommand({
    FunctionName: name, Runtime: config.runtime, Role: config.role, Handler: 'app.handler',
    Code: { ZipFile: zip('v1') }, Description: 'the JS SDK scenario', Timeout: 10, MemorySize: 256,
    Environment: { Variables: { GREETING: 'hello' } }, Tags: { team: 'js' },
  }));
  check(created.$metadata.httpStatusCode === 201, { status: created.$metadata.httpStatusCode });
  check(created.FunctionName === name && created.Runtime === config.runtime, created);
  check(created.FunctionArn === `arn:aws:lambda:${config.region}:000000000000:function:${name}`, created.FunctionArn);
  check(['Pending', 'Active'].includes(created.State), { State: created.State });
  check(created.Version === '$LATEST' && created.MemorySize === 256 && created.Timeout === 10, created);
  return created.FunctionArn;
});

await step('waitUntilFunctionActiveV2', async () => {
  const result = await sdk.waitUntilFunctionActiveV2(waiter, { FunctionName: name });
  check(result.state === 'SUCCESS', result);
  return result.state;
});

await step('GetFunction', async () => {
  const got = await send(new sdk.GetFunctionCommand({ FunctionName: name }));
  const c = got.Configuration;
  check(c.FunctionName === name && c.State === 'Active' && c.LastUpdateStatus === 'Successful', c);
  check(c.Environment?.Variables?.GREETING === 'hello', c.Environment);
  check(got.Code?.RepositoryType === 'S3' && got.Code.Location.startsWith('http'), got.Code);
  check(got.Tags?.team === 'js', { Tags: got.Tags });
  check(typeof c.CodeSha256 === 'string' && c.CodeSize > 0, c);
  check(c.LastModified instanceof Date === false && typeof c.LastModified === 'string', { LastModified: c.LastModified });
  const download = await fetch(got.Code.Location);
  check(download.ok, { downloadStatus: download.status });
  const bytes = new Uint8Array(await download.arrayBuffer());
  check(bytes.length === c.CodeSize, { downloaded: bytes.length, CodeSize: c.CodeSize });
  return `${c.State}, ${c.CodeSize} bytes of code`;
});

await step('UpdateFunctionConfiguration', async () => {
  const updated = await send(new sdk.UpdateFunctionConfigurationCommand({
    FunctionName: name, MemorySize: 512, Timeout: 20,
    Environment: { Variables: { GREETING: 'bonjour' } },
  }));
  check(updated.MemorySize === 512 && updated.Timeout === 20, updated);
  check(['InProgress', 'Successful'].includes(updated.LastUpdateStatus), { LastUpdateStatus: updated.LastUpdateStatus });
  const result = await sdk.waitUntilFunctionUpdatedV2(waiter, { FunctionName: name });
  check(result.state === 'SUCCESS', result);
  const c = await send(new sdk.GetFunctionConfigurationCommand({ FunctionName: name }));
  check(c.Environment?.Variables?.GREETING === 'bonjour' && c.LastUpdateStatus === 'Successful', c);
  return `${updated.LastUpdateStatus} then ${c.LastUpdateStatus}`;
});

let codeSha;
await step('UpdateFunctionCode', async () => {
  const before = await send(new sdk.GetFunctionConfigurationCommand({ FunctionName: name }));
  const updated = await send(new sdk.UpdateFunctionCodeCommand({ FunctionName: name, ZipFile: zip('v2') }));
  check(updated.CodeSha256 !== before.CodeSha256, { before: before.CodeSha256, after: updated.CodeSha256 });
  const result = await sdk.waitUntilFunctionUpdatedV2(waiter, { FunctionName: name });
  check(result.state === 'SUCCESS', result);
  codeSha = updated.CodeSha256;
  return updated.CodeSha256;
});

await step('PublishVersion', async () => {
  const published = await send(new sdk.PublishVersionCommand({
    FunctionName: name, Description: 'first', CodeSha256: codeSha,
  }));
  check(published.Version === '1', { Version: published.Version });
  check(published.FunctionArn.endsWith(`:function:${name}:1`), published.FunctionArn);
  const result = await sdk.waitUntilPublishedVersionActive(waiter, { FunctionName: name, Qualifier: '1' });
  check(result.state === 'SUCCESS', result);
  return published.FunctionArn;
});

await step('CreateAlias', async () => {
  const alias = await send(new sdk.CreateAliasCommand({ FunctionName: name, Name: 'live', FunctionVersion: '1' }));
  check(alias.$metadata.httpStatusCode === 201, { status: alias.$metadata.httpStatusCode });
  check(alias.Name === 'live' && alias.FunctionVersion === '1', alias);
  check(alias.AliasArn.endsWith(`:function:${name}:live`) && typeof alias.RevisionId === 'string', alias);
  return alias.AliasArn;
});

await step('Invoke RequestResponse (alias, LogType Tail)', async () => {
  const r = await send(new sdk.InvokeCommand({
    FunctionName: name, Qualifier: 'live', Payload: JSON.stringify({ who: 'world' }), LogType: 'Tail',
  }));
  check(r.StatusCode === 200 && r.FunctionError === undefined, { StatusCode: r.StatusCode, FunctionError: r.FunctionError });
  check(r.ExecutedVersion === '1', { ExecutedVersion: r.ExecutedVersion });
  const payload = json(r.Payload);
  check(payload.message === 'bonjour world' && payload.version === 2 && payload.function_version === '1', payload);
  const log = Buffer.from(r.LogResult, 'base64').toString('utf8');
  check(log.includes('START RequestId: ') && log.includes('Version: 1'), log);
  check(log.includes('greeting world') && log.includes('END RequestId: ') && log.includes('REPORT RequestId: '), log);
  check(log.includes('Billed Duration: ') && log.includes('Memory Size: 512 MB'), log);
  return payload;
});

await step('Invoke RequestResponse ($LATEST, no payload)', async () => {
  const r = await send(new sdk.InvokeCommand({ FunctionName: name }));
  check(r.StatusCode === 200 && r.ExecutedVersion === '$LATEST' && r.LogResult === undefined, r);
  const payload = json(r.Payload);
  check(payload.function_version === '$LATEST' && payload.message === 'bonjour nobody', payload);
  return payload;
});

await step('Invoke Event', async () => {
  const r = await send(new sdk.InvokeCommand({
    FunctionName: name, InvocationType: 'Event', Payload: JSON.stringify({ who: 'async' }),
  }));
  check(r.StatusCode === 202 && r.$metadata.httpStatusCode === 202, { StatusCode: r.StatusCode });
  check(r.Payload == null || r.Payload.length === 0, { payload: r.Payload && text(r.Payload) });
  return r.StatusCode;
});

await step('InvokeAsync', async () => {
  const r = await send(new sdk.InvokeAsyncCommand({ FunctionName: name, InvokeArgs: JSON.stringify({ who: 'old api' }) }));
  check(r.Status === 202 && r.$metadata.httpStatusCode === 202, { Status: r.Status });
  return r.Status;
});

await step('Invoke DryRun', async () => {
  const r = await send(new sdk.InvokeCommand({ FunctionName: name, InvocationType: 'DryRun' }));
  check(r.StatusCode === 204, { StatusCode: r.StatusCode });
  return r.StatusCode;
});

await step('Invoke a function error (FunctionError Unhandled)', async () => {
  await send(new sdk.CreateFunctionCommand({
    FunctionName: failing, Runtime: config.runtime, Role: config.role, Handler: 'app.handler',
    Code: { ZipFile: zip('failing') },
  }));
  await sdk.waitUntilFunctionActiveV2(waiter, { FunctionName: failing });
  const r = await send(new sdk.InvokeCommand({ FunctionName: failing, Payload: '{}', LogType: 'Tail' }));
  check(r.StatusCode === 200 && r.FunctionError === 'Unhandled', { StatusCode: r.StatusCode, FunctionError: r.FunctionError });
  const payload = json(r.Payload);
  check(payload.errorType === 'KeyError' && Array.isArray(payload.stackTrace), payload);
  check(payload.errorMessage === "'missing'", payload);
  const log = Buffer.from(r.LogResult, 'base64').toString('utf8');
  check(log.includes('KeyError'), log);
  return payload;
});

await step('InvokeWithResponseStream (streaming Node.js function)', async () => {
  if (!config.nodeRuntime) throw new StepFailed('no Node.js runtime on the server');
  await send(new sdk.CreateFunctionCommand({
    FunctionName: streamer, Runtime: config.nodeRuntime, Role: config.role, Handler: 'index.handler',
    Code: { ZipFile: zip('streaming') },
  }));
  await sdk.waitUntilFunctionActiveV2(waiter, { FunctionName: streamer });
  const r = await send(new sdk.InvokeWithResponseStreamCommand({
    FunctionName: streamer, LogType: 'Tail', Payload: JSON.stringify({ chunks: ['streamed ', 'as ', 'written'] }),
  }));
  check(r.StatusCode === 200 && r.ExecutedVersion === '$LATEST', { StatusCode: r.StatusCode, ExecutedVersion: r.ExecutedVersion });
  check(r.ResponseStreamContentType === 'text/plain', { ResponseStreamContentType: r.ResponseStreamContentType });
  const chunks = [];
  let complete;
  for await (const event of r.EventStream) {
    if (event.PayloadChunk) chunks.push(text(event.PayloadChunk.Payload));
    else if (event.InvokeComplete) complete = event.InvokeComplete;
    else throw new StepFailed(`an unexpected event: ${JSON.stringify(Object.keys(event))}`);
  }
  check(chunks.join('') === 'streamed as written', { chunks });
  check(complete !== undefined, 'no InvokeComplete event');
  check(complete.ErrorCode === undefined && complete.ErrorDetails === undefined, complete);
  const log = Buffer.from(complete.LogResult ?? '', 'base64').toString('utf8');
  check(log.includes('streaming for') && log.includes('REPORT RequestId: '), { log });
  return { chunks: chunks.length, body: chunks.join('') };
});

await step('InvokeWithResponseStream (an error mid-stream)', async () => {
  const r = await send(new sdk.InvokeWithResponseStreamCommand({
    FunctionName: streamer, Payload: JSON.stringify({ chunks: ['before the error'], fail: true }),
  }));
  const chunks = [];
  let complete;
  for await (const event of r.EventStream) {
    if (event.PayloadChunk) chunks.push(text(event.PayloadChunk.Payload));
    else if (event.InvokeComplete) complete = event.InvokeComplete;
  }
  check(chunks.join('') === 'before the error', { chunks });
  check(complete?.ErrorCode === 'TypeError', complete);
  check(complete.ErrorDetails.includes('broken mid-stream'), complete);
  return complete;
});

await step('InvokeWithResponseStream (a function that does not stream)', async () => {
  const r = await send(new sdk.InvokeWithResponseStreamCommand({ FunctionName: name, Qualifier: '1', Payload: '{"who":"stream"}' }));
  check(r.ExecutedVersion === '1', { ExecutedVersion: r.ExecutedVersion });
  let body = '';
  for await (const event of r.EventStream) {
    if (event.PayloadChunk) body += text(event.PayloadChunk.Payload);
  }
  check(JSON.parse(body).message === 'bonjour stream', { body });
  return body;
});

await step('ListFunctions', async () => {
  const names = [];
  for await (const page of sdk.paginateListFunctions({ client, pageSize: 2 }, {})) {
    names.push(...page.Functions.map((f) => f.FunctionName));
  }
  for (const wanted of [name, failing, streamer]) check(names.includes(wanted), { missing: wanted, names });
  check(new Set(names).size === names.length, { duplicates: names });
  return `${names.length} functions`;
});

await step('ListVersionsByFunction', async () => {
  const listed = await send(new sdk.ListVersionsByFunctionCommand({ FunctionName: name }));
  const versions = listed.Versions.map((v) => v.Version);
  check(JSON.stringify(versions) === JSON.stringify(['$LATEST', '1']), versions);
  return versions;
});

await step('ListAliases', async () => {
  const listed = await send(new sdk.ListAliasesCommand({ FunctionName: name }));
  check(listed.Aliases.length === 1 && listed.Aliases[0].Name === 'live' && listed.Aliases[0].FunctionVersion === '1', listed.Aliases);
  return listed.Aliases.map((a) => a.AliasArn);
});

await step('ListTags', async () => {
  const arn = `arn:aws:lambda:${config.region}:000000000000:function:${name}`;
  await send(new sdk.TagResourceCommand({ Resource: arn, Tags: { stage: 'test' } }));
  const listed = await send(new sdk.ListTagsCommand({ Resource: arn }));
  check(listed.Tags?.team === 'js' && listed.Tags.stage === 'test', listed.Tags);
  return listed.Tags;
});

await step('error: GetFunction of a missing function (ResourceNotFoundException 404)', () => expectError(
  () => send(new sdk.GetFunctionCommand({ FunctionName: `${name}-missing` })), 'ResourceNotFoundException', 404,
  `Function not found: arn:aws:lambda:${config.region}:000000000000:function:${name}-missing`,
));

await step('error: Invoke of a missing function (ResourceNotFoundException 404)', () => expectError(
  () => send(new sdk.InvokeCommand({ FunctionName: `${name}-missing`, Payload: '{}' })), 'ResourceNotFoundException', 404,
  `Function not found: arn:aws:lambda:${config.region}:000000000000:function:${name}-missing:$LATEST`,
));

await step('error: InvokeWithResponseStream of a missing alias (ResourceNotFoundException 404)', () => expectError(
  () => send(new sdk.InvokeWithResponseStreamCommand({ FunctionName: name, Qualifier: 'nosuchalias' })),
  'ResourceNotFoundException', 404,
));

await step('error: CreateFunction of a duplicate (ResourceConflictException 409)', () => expectError(
  () => send(new sdk.CreateFunctionCommand({
    FunctionName: name, Runtime: config.runtime, Role: config.role, Handler: 'app.handler', Code: { ZipFile: zip('v1') },
  })), 'ResourceConflictException', 409, `Function already exist: ${name}`,
));

await step('error: CreateFunction with a deprecated runtime (InvalidParameterValueException 400)', () => expectError(
  () => send(new sdk.CreateFunctionCommand({
    FunctionName: `${name}-badruntime`, Runtime: 'python2.7', Role: config.role, Handler: 'app.handler',
    Code: { ZipFile: zip('v1') },
  })), 'InvalidParameterValueException', 400,
  'The runtime parameter of python2.7 is no longer supported for creating or updating AWS Lambda functions.',
));

await step('error: CreateFunction with a runtime no one has (InvalidParameterValueException 400)', () => expectError(
  () => send(new sdk.CreateFunctionCommand({
    FunctionName: `${name}-badruntime`, Runtime: 'cobol85', Role: config.role, Handler: 'app.handler',
    Code: { ZipFile: zip('v1') },
  })), 'InvalidParameterValueException', 400,
  "Value cobol85 at 'runtime' failed to satisfy constraint: Member must satisfy enum value set",
));

await step('error: UpdateFunctionConfiguration with an over-long timeout (ValidationException 400)', () => expectError(
  () => send(new sdk.UpdateFunctionConfigurationCommand({ FunctionName: name, Timeout: 1200 })),
  'ValidationException', 400, "Value '1200' at 'timeout' failed to satisfy constraint",
));

await step('error: CreateAlias that exists (ResourceConflictException 409)', () => expectError(
  () => send(new sdk.CreateAliasCommand({ FunctionName: name, Name: 'live', FunctionVersion: '1' })),
  'ResourceConflictException', 409,
));

await step('error: Invoke with a payload over 6 MB (RequestEntityTooLargeException 413)', () => expectError(
  () => send(new sdk.InvokeCommand({ FunctionName: name, Payload: JSON.stringify({ who: 'x'.repeat(6 * 1024 * 1024 + 1) }) })),
  'RequestEntityTooLargeException', 413, 'Request must be smaller than 6291456 bytes for the InvokeFunction operation',
));

await step('error: Invoke Event with a payload over 1 MB (RequestEntityTooLargeException 413)', () => expectError(
  () => send(new sdk.InvokeCommand({
    FunctionName: name, InvocationType: 'Event', Payload: JSON.stringify({ who: 'x'.repeat(1024 * 1024) }),
  })),
  'RequestEntityTooLargeException', 413, 'byte payload is too large for the Event invocation type (limit 1048576 bytes)',
));

await step('error: Invoke with a body that is not JSON (InvalidRequestContentException 400)', () => expectError(
  () => send(new sdk.InvokeCommand({ FunctionName: name, Payload: 'not json' })),
  'InvalidRequestContentException', 400,
));

await step('error: DeleteFunction of a version an alias uses (ResourceConflictException 409)', () => expectError(
  () => send(new sdk.DeleteFunctionCommand({ FunctionName: name, Qualifier: '1' })),
  'ResourceConflictException', 409, 'live',
));

await step('error: UpdateFunctionCode with a file that is not a zip (InvalidParameterValueException 400)', () => expectError(
  () => send(new sdk.UpdateFunctionCodeCommand({ FunctionName: name, ZipFile: new TextEncoder().encode('not a zip') })),
  'InvalidParameterValueException', 400, 'Could not unzip uploaded file. Please check your file, then try to upload again.',
));

await step('error: GetAlias of a missing alias (ResourceNotFoundException 404)', () => expectError(
  () => send(new sdk.GetAliasCommand({ FunctionName: name, Name: 'nosuchalias' })), 'ResourceNotFoundException', 404,
  `Cannot find alias arn: arn:aws:lambda:${config.region}:000000000000:function:${name}:nosuchalias`,
));

await step('error: UpdateFunctionConfiguration with a stale RevisionId (PreconditionFailedException 412)', () => expectError(
  () => send(new sdk.UpdateFunctionConfigurationCommand({ FunctionName: name, Description: 'x', RevisionId: 'not-the-revision' })),
  'PreconditionFailedException', 412,
));

await step('error: Invoke with no concurrency left (TooManyRequestsException 429)', async () => {
  await send(new sdk.PutFunctionConcurrencyCommand({ FunctionName: failing, ReservedConcurrentExecutions: 0 }));
  const got = await send(new sdk.GetFunctionConcurrencyCommand({ FunctionName: failing }));
  check(got.ReservedConcurrentExecutions === 0, got);
  try {
    await send(new sdk.InvokeCommand({ FunctionName: failing, Payload: '{}' }));
  } catch (error) {
    check(error instanceof sdk.TooManyRequestsException && error.$metadata.httpStatusCode === 429,
      { name: error.name, status: error.$metadata?.httpStatusCode });
    check(error.Reason === 'ReservedFunctionConcurrentInvocationLimitExceeded', { Reason: error.Reason });
    await send(new sdk.DeleteFunctionConcurrencyCommand({ FunctionName: failing }));
    return `${error.name} ${error.$metadata.httpStatusCode} ${error.Reason}: ${error.message}`;
  }
  throw new StepFailed('the invocation was not throttled');
});

await step('GetAccountSettings', async () => {
  const settings = await send(new sdk.GetAccountSettingsCommand({}));
  check(settings.AccountLimit?.ConcurrentExecutions > 0 && settings.AccountUsage?.FunctionCount >= 3, settings);
  return settings.AccountLimit;
});

await step('DeleteAlias', async () => {
  const r = await send(new sdk.DeleteAliasCommand({ FunctionName: name, Name: 'live' }));
  check(r.$metadata.httpStatusCode === 204, { status: r.$metadata.httpStatusCode });
  return r.$metadata.httpStatusCode;
});

await step('DeleteFunction', async () => {
  for (const fn of [name, failing, streamer]) {
    const r = await send(new sdk.DeleteFunctionCommand({ FunctionName: fn }));
    check(r.$metadata.httpStatusCode === 204, { function: fn, status: r.$metadata.httpStatusCode });
  }
  return 'three functions deleted';
});

await step('error: GetFunction after DeleteFunction (ResourceNotFoundException 404)', () => expectError(
  () => send(new sdk.GetFunctionCommand({ FunctionName: name })), 'ResourceNotFoundException', 404,
));

process.exitCode = failures ? 1 : 0;
