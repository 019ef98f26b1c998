/**
 * core: one call context per unit of work. It survives `await`, timers and fan-out, and
 * crosses a process boundary as headers (W3C traceparent, deadline, caller, stress flag).
 *
 *   node dist/core/call-context.js
 */
import {
  currentContext,
  decodeContext,
  encodeContext,
  remainingTime,
  withContext,
} from 'peakware/core';
import { check } from '../env.js';

await withContext({ timeoutMs: 500, callerApp: 'shop.gateway', stress: true }, async () => {
  const ctx = currentContext()!;
  // Lost across neither an await nor a timer:
  await new Promise((resolve) => setTimeout(resolve, 10));
  check(currentContext()?.traceId === ctx.traceId, 'the context survives a timer');
  const fanOut = await Promise.all([1, 2, 3].map(async () => currentContext()?.traceId));
  check(
    fanOut.every((id) => id === ctx.traceId),
    'every branch of a fan-out sees the same trace',
  );

  // What an RPC or HTTP hop carries, and what the other side rebuilds from it.
  const headers = encodeContext(ctx);
  const remote = decodeContext(headers);
  check(remote.traceId === ctx.traceId, 'the trace id crosses the hop');
  check(remote.stress === true, 'the stress flag crosses the hop');
  check(remainingTime(remote) <= 500, 'the deadline crosses as remaining time');
  console.log(`trace ${ctx.traceId}: headers ${Object.keys(headers).join(', ')}`);
  console.log(`remaining ${remainingTime()} ms of 500; stress=${remote.stress}`);
});
console.log('ok');
