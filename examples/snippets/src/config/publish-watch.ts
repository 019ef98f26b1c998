/**
 * config: publish an item and watch new versions arrive. The instance's ConfigClient holds
 * one Server-Sent-Events stream for its app, so a `peak config set` reaches it within
 * moments, no polling; reads are typed with a zod schema. A value the item's schema
 * refuses is never released: instances keep the value in force.
 *
 *   PEAK_SERVER=http://127.0.0.1:7420 PEAK_ADMIN_TOKEN=... node dist/config/publish-watch.js
 */
import { ConfigClient, type ConfigEntry } from 'peakware/config';
import { z } from 'zod';
import { check, server, within } from '../env.js';
import { peak } from '../peak-cli.js';

const app = `snippet-shop-${process.pid}`;
const item = `${app}/db/pool`;
const Pool = z.object({ max: z.number().int().min(1) });
const schema = '{"type":"object","properties":{"max":{"type":"integer","minimum":1}}}';

// The operator publishes version 1, with a JSON Schema the control plane checks on publish.
await peak('config', 'set', item, '{"max":10}', '--schema', schema, '-m', 'first pool size');

const config = new ConfigClient({ servers: [server], app, instanceId: 'web-1' });
const origin = await config.start();
console.log(`${app}: items loaded from the ${origin}`);
check(origin === 'server', 'the client read its items from the control plane');
check(config.getJson('db/pool', undefined, Pool)?.max === 10, 'version 1 is read');

/** The next change of `name` pushed to this instance. */
function nextChange(name: string): Promise<{ entry: ConfigEntry; previous?: ConfigEntry }> {
  return new Promise((resolve) => {
    const stop = config.watch(name, (entry, previous) => {
      stop();
      resolve({ entry, ...(previous === undefined ? {} : { previous }) });
    });
  });
}

try {
  const pushed = nextChange('db/pool');
  await peak('config', 'set', item, '{"max":20}', '-m', 'more connections for the sale');
  const { entry, previous } = await within('push of version 2', pushed);
  console.log(
    `pushed: v${previous?.version} ${previous?.value} -> v${entry.version} ${entry.value}`,
  );
  check(entry.version === 2 && previous?.version === 1, 'version 2 replaces version 1');
  check(config.getJson('db/pool', undefined, Pool)?.max === 20, 'reads see version 2 at once');

  // A value the item's schema refuses is not published; every instance keeps version 2.
  const refused = await peak('config', 'set', item, '{"max":0}').catch((err: Error) => err);
  check(refused instanceof Error, 'a value the schema refuses is not published');
  console.log(`refused: ${(refused as Error).message.split('\n')[0]}`);
  check(/max/.test((refused as Error).message), 'the refusal names the field');
  check(config.entry('db/pool')?.version === 2, 'the instance keeps the released version');
} finally {
  await config.close();
}
console.log('ok');
