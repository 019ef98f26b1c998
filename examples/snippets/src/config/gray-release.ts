/**
 * config: a gray release. A new value goes first to the instances tagged `canary`; the
 * others keep the released one until the operator promotes it (a new version for everyone)
 * or aborts it (canaries go back). Each instance sees its own effective value pushed.
 *
 *   PEAK_SERVER=http://127.0.0.1:7420 PEAK_ADMIN_TOKEN=... node dist/config/gray-release.js
 */
import { ConfigClient } from 'peakware/config';
import { check, server, until } from '../env.js';
import { peak } from '../peak-cli.js';

const app = `snippet-gray-${process.pid}`;
const item = `${app}/limits/qps`;
await peak('config', 'set', item, '100', '-m', 'released limit');

// Two instances of the app: one canary, one not.
const canary = new ConfigClient({ servers: [server], app, instanceId: 'web-1', tags: ['canary'] });
const stable = new ConfigClient({ servers: [server], app, instanceId: 'web-2' });
await Promise.all([canary.start(), stable.start()]);
const limits = () => [canary.getNumber('limits/qps'), stable.getNumber('limits/qps')];
const show = (when: string) => console.log(`${when}: canary ${limits()[0]}, stable ${limits()[1]}`);

try {
  // start() waits up to 3 s for the first snapshot; on a busy machine it may come later.
  await until('both start with the released value', () => limits().every((n) => n === 100));
  show('released');

  await peak('config', 'gray', item, '200', '--tags', 'canary', '-m', 'try 200 on canaries');
  await until('the gray value on the canary', () => limits()[0] === 200);
  show('gray to canary');
  check(limits()[1] === 100, 'the stable instance keeps the released value');
  check(canary.entry('limits/qps')?.gray === true, 'the canary knows its value is a gray one');

  await peak('config', 'promote', item, '-m', 'canary fine');
  await until('the promoted value everywhere', () => limits().every((n) => n === 200));
  show('promoted');
  check(stable.entry('limits/qps')?.version === 2, 'promotion released version 2 to all');
  check(canary.entry('limits/qps')?.gray === false, 'no gray value left');

  // Another gray release, aborted: the canary goes back to the released value.
  await peak('config', 'gray', item, '500', '--tags', 'canary');
  await until('the second gray value on the canary', () => limits()[0] === 500);
  await peak('config', 'gray', item, '--abort');
  await until('the canary back on the released value', () => limits()[0] === 200);
  show('aborted');
  check(stable.entry('limits/qps')?.version === 2, 'an aborted gray release publishes nothing');
} finally {
  await Promise.all([canary.close(), stable.close()]);
}
console.log('ok');
