/** The service the cross-process RPC tests and the benchmark call. */
import { z } from 'zod';
import { defineService } from '../src/rpc/index.js';

export const stockService = defineService({
  name: 'test.stock',
  version: '1.0.0',
  methods: {
    /** Idempotent read; sleeps `ms` to keep calls in flight. */
    get: {
      input: z.object({ sku: z.string(), ms: z.number().int().min(0).max(1000).default(0) }),
      output: z.object({ sku: z.string(), left: z.number(), pid: z.number() }),
      idempotent: true,
    },
    /** Not idempotent: records `id` in the provider's ledger file before answering. */
    deduct: {
      input: z.object({ id: z.string(), ms: z.number().int().min(0).max(1000).default(0) }),
      output: z.object({ ok: z.literal(true), pid: z.number() }),
    },
    /**
     * Sleeps `ms`, then calls `deduct` (or `get`) downstream through the provider's own
     * client, in the incoming call's context (deadline and route tags carry over).
     */
    relay: {
      input: z.object({
        id: z.string(),
        ms: z.number().int().min(0).max(5000),
        op: z.enum(['get', 'deduct']),
      }),
      output: z.object({ pid: z.number(), downstreamPid: z.number() }),
    },
  },
});
