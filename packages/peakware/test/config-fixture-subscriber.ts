/**
 * A subscriber process for the cross-process config tests: reads app APP from PEAK_SERVER
 * as INSTANCE_ID with TAGS, keeping SNAPSHOT. Prints one JSON line when started
 * (`{"ready":origin,"entries":[…]}`) and one per change (`{"entry":…}`); closes (writing
 * its snapshot) on SIGTERM.
 */
import { ConfigClient } from '../src/config/index.js';

const client = new ConfigClient({
  servers: (process.env.PEAK_SERVER ?? '').split(','),
  app: process.env.APP ?? 'test',
  ...(process.env.INSTANCE_ID ? { instanceId: process.env.INSTANCE_ID } : {}),
  ...(process.env.TAGS ? { tags: process.env.TAGS.split(',') } : {}),
  ...(process.env.SNAPSHOT ? { snapshotFile: process.env.SNAPSHOT } : {}),
});
client.watch('*', (entry) => {
  process.stdout.write(`${JSON.stringify({ entry })}\n`);
});
const origin = await client.start(Number(process.env.START_TIMEOUT_MS ?? 3000));
process.stdout.write(`${JSON.stringify({ ready: origin, entries: client.entries() })}\n`);
process.on('SIGTERM', () => {
  client.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
