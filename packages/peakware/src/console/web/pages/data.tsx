/**
 * Data: the sharding layouts apps publish to the config center (an item in group `data`
 * whose key starts with `layout`, holding the layout options as JSON), each table's shards
 * (shard s of a table with M tables per data source is `<table>_<s>` on data source
 * floor(s / M)), and the slowest statements per shard from the SQL spans.
 */
import type { ShardingLayoutOptions } from '../../../data/sharding-layout.js';
import { api } from '../api.js';
import { useLoad } from '../hooks.js';
import { navigate } from '../router.js';
import { Badge, Card, ErrorBox, ms, num, Table } from '../ui.js';

interface Layout {
  app: string;
  key: string;
  version: number;
  options: ShardingLayoutOptions | undefined;
  error?: string;
}

async function loadLayouts(): Promise<Layout[]> {
  const apps = await api.config.apps();
  const out: Layout[] = [];
  for (const { app } of apps) {
    const items = await api.config.items(app);
    for (const item of items) {
      if (item.group !== 'data' || !item.key.startsWith('layout')) continue;
      try {
        out.push({ app, key: item.key, version: item.version, options: JSON.parse(item.value) });
      } catch (err) {
        out.push({
          app,
          key: item.key,
          version: item.version,
          options: undefined,
          error: String(err),
        });
      }
    }
  }
  return out;
}

function LayoutCard(props: { layout: Layout }) {
  const o = props.layout.options;
  return (
    <Card
      wide
      title={`${props.layout.app}/data/${props.layout.key} (version ${props.layout.version})`}
      testId="layout"
    >
      {o === undefined ? (
        <p class="error">not a layout: {props.layout.error}</p>
      ) : (
        <>
          <p>
            data sources:{' '}
            {o.dataSources.map((d) => (
              <Badge key={d}>{d}</Badge>
            ))}
            {o.broadcastTables?.length ? <> · broadcast: {o.broadcastTables.join(', ')}</> : null}
            {o.bindingGroups?.length ? (
              <> · bound together: {o.bindingGroups.map((g) => g.join(' + ')).join('; ')}</>
            ) : null}
          </p>
          <Table
            testId="layout-tables"
            rows={Object.entries(o.tables ?? {})}
            rowKey={([name]) => name}
            columns={[
              { title: 'table', cell: ([name]) => name },
              { title: 'sharded by', cell: ([, t]) => t.shardingColumn },
              { title: 'algorithm', cell: ([, t]) => <code>{JSON.stringify(t.algorithm)}</code> },
              {
                title: 'shards',
                cell: ([, t]) =>
                  (t.dataSources ?? o.dataSources).length * (t.tablesPerDataSource ?? 1),
                align: 'right',
              },
              {
                title: 'where',
                cell: ([name, t]) => {
                  const ds = t.dataSources ?? o.dataSources;
                  const per = t.tablesPerDataSource ?? 1;
                  const n = ds.length * per;
                  const shown = Array.from(
                    { length: Math.min(n, 8) },
                    (_, s) => `${name}_${s}@${ds[Math.floor(s / per)]}`,
                  );
                  return `${shown.join(', ')}${n > 8 ? `, … (${n})` : ''}`;
                },
              },
            ]}
          />
        </>
      )}
    </Card>
  );
}

export function DataPage() {
  const layouts = useLoad(loadLayouts, []);
  const slow = useLoad(() => api.telemetry.slowSql({ sinceMinutes: 60, limit: 200 }), [], 10_000);
  const byShard = new Map<string, NonNullable<typeof slow.data>>();
  for (const s of slow.data ?? []) {
    const shard = s.shard ?? '(unsharded)';
    byShard.set(shard, [...(byShard.get(shard) ?? []), s]);
  }
  const shards = [...byShard.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  return (
    <div class="grid">
      <ErrorBox error={layouts.error} />
      {(layouts.data ?? []).length === 0 && layouts.data !== undefined ? (
        <Card wide title="Layouts">
          <p class="empty">
            No layout published. An app publishes its layout options as JSON to config item
            <code> &lt;app&gt;/data/layout</code> (for example with <code>peak config set</code>).
          </p>
        </Card>
      ) : null}
      {(layouts.data ?? []).map((l) => (
        <LayoutCard key={`${l.app}/${l.key}`} layout={l} />
      ))}
      <Card wide title="Shards: statements and the slowest ones (last hour)" testId="shards">
        <ErrorBox error={slow.error} />
        <Table
          rows={shards}
          rowKey={([shard]) => shard}
          empty="No SQL traced in the last hour."
          columns={[
            { title: 'shard', cell: ([shard]) => shard },
            { title: 'fingerprints', cell: ([, list]) => list.length, align: 'right' },
            {
              title: 'calls',
              cell: ([, list]) => num(list.reduce((n, s) => n + s.calls, 0)),
              align: 'right',
            },
            {
              title: 'slowest mean',
              cell: ([, list]) => ms(Math.max(...list.map((s) => s.avgMs))),
              align: 'right',
            },
            {
              title: 'slowest statement',
              cell: ([, list]) => <code>{list[0]?.statement ?? list[0]?.fingerprint}</code>,
            },
          ]}
        />
      </Card>
      <Card wide title="Slow statements by shard">
        <Table
          testId="slow-by-shard"
          rows={(slow.data ?? []).slice(0, 50)}
          empty="No SQL traced in the last hour."
          onRow={(s) => navigate('traces', { trace: s.slowestTraceId })}
          columns={[
            { title: 'shard', cell: (s) => s.shard ?? '–' },
            { title: 'statement', cell: (s) => <code>{s.statement ?? s.fingerprint}</code> },
            { title: 'service', cell: (s) => s.service },
            { title: 'calls', cell: (s) => num(s.calls), align: 'right' },
            { title: 'avg', cell: (s) => ms(s.avgMs), align: 'right' },
            { title: 'max', cell: (s) => ms(s.maxMs), align: 'right' },
            { title: '', cell: (s) => (s.stress ? <Badge tone="stress">stress</Badge> : null) },
          ]}
        />
      </Card>
    </div>
  );
}
