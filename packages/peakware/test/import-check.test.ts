/**
 * The import-direction check that `npm run lint` runs (scripts/check-imports.mjs): it fails
 * on a planted folder cycle and on wrong-way imports, naming file and line, and passes on
 * the real source tree.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface CheckResult {
  problems: string[];
  warnings: string[];
  files: number;
  imports: number;
}
type CheckImports = (srcRoot: string) => CheckResult;

// dist/test/ -> the repository root
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const scriptUrl = pathToFileURL(path.join(repo, 'scripts', 'check-imports.mjs')).href;

async function plant(root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), text);
  }
}

describe('import-direction check', () => {
  let checkImports: CheckImports;
  let scratch: string;

  before(async () => {
    ({ checkImports } = (await import(scriptUrl)) as { checkImports: CheckImports });
    scratch = await mkdtemp(path.join(os.tmpdir(), 'peak-import-check-'));
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('passes on the real source tree', () => {
    const result = checkImports(path.join(repo, 'packages', 'peakware', 'src'));
    assert.deepEqual(result.problems, []);
    assert.ok(result.files > 100 && result.imports > 300, JSON.stringify(result));
  });

  it('fails on a planted folder cycle, naming each edge', async () => {
    const src = path.join(scratch, 'cycle');
    // registry -> rpc is wrong-way too, but the cycle must be reported as a cycle
    await plant(src, {
      'core/a.ts': 'export const a = 1;\n',
      'rpc/client.ts': "import { r } from '../registry/registry.js';\nexport const c = r;\n",
      'registry/registry.ts':
        "import type { c } from '../rpc/client.js';\nexport const r = 2;\nexport type C = typeof c;\n",
    });
    const { problems } = checkImports(src);
    const cycle = problems.find((p) => p.startsWith('folder cycle:'));
    assert.ok(cycle, problems.join('\n'));
    assert.match(cycle, /registry -> rpc -> registry/);
    assert.match(cycle, /registry\/registry\.ts:1 imports rpc\/client\.ts/);
    assert.match(cycle, /rpc\/client\.ts:1 imports registry\/registry\.ts/);
  });

  it('fails on wrong-way imports, naming file, line and rule', async () => {
    const src = path.join(scratch, 'wrong-way');
    await plant(src, {
      'core/errors.ts':
        "// core at the bottom\nimport { g } from '../guard/guard.js';\nexport const e = g;\n",
      'guard/guard.ts': 'export const g = 1;\n',
      'mq/producer.ts': "import { Broker } from './server/broker.js';\nexport const p = Broker;\n",
      'mq/server/broker.ts':
        "import { start } from '../../server/peak-server.js';\nexport const Broker = start;\n",
      'data/router.ts': "import { p } from '../mq/producer.js';\nexport const d = p;\n",
      'server/peak-server.ts': "import { d } from '../data/router.js';\nexport const start = d;\n",
      'server/modules.ts':
        "import { Broker } from '../mq/server/broker.js';\nexport const m = [Broker];\n",
      'mq/producer.test.ts': "import { start } from '../server/peak-server.js';\nvoid start;\n",
    });
    const { problems } = checkImports(src);
    const text = problems.join('\n');
    assert.match(
      text,
      /core\/errors\.ts:2: wrong-way import of guard\/guard\.ts: core \(layer 0\) may not import guard/,
    );
    assert.match(
      text,
      /mq\/producer\.ts:1: wrong-way import of mq\/server\/broker\.ts: an SDK folder may not import a server\//,
    );
    assert.match(text, /mq\/server\/broker\.ts:1: .*may use only the host primitives/);
    assert.match(text, /data\/router\.ts:1: .*share a layer/);
    assert.match(text, /server\/peak-server\.ts:1: .*only in server\/modules\.ts/);
    assert.match(text, /server\/modules\.ts:1: .*only through its server\/index\.ts/);
    // a test file may import anything inside src
    assert.doesNotMatch(text, /producer\.test\.ts/);
  });

  it('lets admin/ read a server half only as types', async () => {
    const src = path.join(scratch, 'admin');
    await plant(src, {
      'config/server/views.ts': 'export interface ItemView { app: string }\nexport const x = 1;\n',
      'admin/typed.ts':
        "import type { ItemView } from '../config/server/views.js';\nexport type I = ItemView;\n",
      'admin/loads.ts': "import { x } from '../config/server/views.js';\nexport const y = x;\n",
    });
    const text = checkImports(src).problems.join('\n');
    assert.match(
      text,
      /admin\/loads\.ts:1: wrong-way import of config\/server\/views\.ts: peakware\/admin is a client/,
    );
    assert.doesNotMatch(text, /admin\/typed\.ts/);
  });

  it('treats `import { type A }` as type-only and ignores imports in comments', async () => {
    const src = path.join(scratch, 'types');
    await plant(src, {
      'rpc/filter.ts': 'export interface Filter { name: string }\n',
      'mq/consumer.ts':
        "/**\n * import { x } from '../server/nowhere.js';\n */\nimport { type Filter } from '../rpc/filter.js';\nexport type F = Filter;\n",
    });
    assert.deepEqual(checkImports(src).problems, []);
  });
});
