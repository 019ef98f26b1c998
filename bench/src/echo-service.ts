/** The RPC echo the benchmarks call: `{ n, s }` in, the same out (idempotent). */
import { defineService } from 'peakware/rpc';
import { z } from 'zod';

export const echoService = defineService({
  name: 'bench.echo',
  methods: {
    echo: {
      input: z.object({ n: z.number(), s: z.string() }),
      output: z.object({ n: z.number(), s: z.string() }),
      idempotent: true,
    },
  },
});
