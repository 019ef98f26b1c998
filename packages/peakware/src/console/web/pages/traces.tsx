/**
 * Traces: search by service, operation, duration, status, tag, traffic and time; a trace as
 * a waterfall with its critical path; the slowest SQL with its statement and the trace of
 * its slowest call.
 */
import { useState } from 'preact/hooks';
import type { TraceNode, TraceSearchQuery, TraceTree } from '../../../admin/telemetry-admin.js';
import { api } from '../api.js';
import { useLoad } from '../hooks.js';
import { navigate, useRoute } from '../router.js';
import { Badge, Button, Card, ErrorBox, Field, ms, num, Table, Tabs, when } from '../ui.js';

interface Row {
  node: TraceNode;
  depth: number;
}

function flatten(nodes: readonly TraceNode[], depth = 0, out: Row[] = []): Row[] {
  for (const n of [...nodes].sort((a, b) => a.span.startUs - b.span.startUs)) {
    out.push({ node: n, depth });
    flatten(n.children, depth + 1, out);
  }
  return out;
}

function Waterfall(props: { tree: TraceTree }) {
  const rows = flatten(props.tree.roots);
  const start = Math.min(...rows.map((r) => r.node.span.startUs));
  const total = Math.max(props.tree.durationUs, 1);
  const critical = new Set(props.tree.criticalPath);
  const [open, setOpen] = useState<string | undefined>(undefined);
  const picked = rows.find((r) => r.node.span.spanId === open)?.node.span;
  return (
    <div>
      <p class="muted">
        {props.tree.spanCount} spans across {props.tree.services.join(', ')};{' '}
        {ms(props.tree.durationUs / 1000)}; {props.tree.errorCount} errors. Highlighted: the
        critical path (what the trace's time waited on).
      </p>
      <div class="waterfall" data-testid="waterfall">
        {rows.map(({ node, depth }) => {
          const s = node.span;
          const left = ((s.startUs - start) / total) * 100;
          const width = Math.max((s.durationUs / total) * 100, 0.3);
          return (
            <button
              type="button"
              key={s.spanId}
              class={`wf-row ${critical.has(s.spanId) ? 'critical' : ''} ${s.error ? 'err' : ''}`}
              onClick={() => setOpen(open === s.spanId ? undefined : s.spanId)}
            >
              <span class="wf-name" style={{ paddingLeft: `${depth * 14}px` }}>
                {s.name} <small>{s.service}</small>
              </span>
              <span class="wf-track">
                <span class="wf-bar" style={{ left: `${left}%`, width: `${width}%` }} />
              </span>
              <span class="wf-ms">{ms(s.durationUs / 1000)}</span>
            </button>
          );
        })}
      </div>
      {picked === undefined ? null : (
        <Table
          rows={Object.entries(picked.attributes)}
          columns={[
            { title: 'attribute', cell: ([k]) => k },
            { title: 'value', cell: ([, v]) => <code>{String(v)}</code> },
          ]}
        />
      )}
    </div>
  );
}

function TraceView(props: { traceId: string }) {
  const tree = useLoad(() => api.telemetry.trace(props.traceId), [props.traceId]);
  return (
    <Card
      wide
      title={`Trace ${props.traceId}`}
      actions={<Button onClick={() => navigate('traces')}>Back to search</Button>}
    >
      <ErrorBox error={tree.error} />
      {tree.data === undefined ? null : <Waterfall tree={tree.data} />}
    </Card>
  );
}

function Search() {
  const [form, setForm] = useState({
    service: '',
    name: '',
    minDurationMs: '',
    status: 'any',
    traffic: 'any',
    tag: '',
    sinceMinutes: '60',
  });
  const [query, setQuery] = useState<TraceSearchQuery>({ sinceMinutes: 60, limit: 100 });
  const hits = useLoad(() => api.telemetry.traces(query), [JSON.stringify(query)]);
  const set = (k: keyof typeof form) => (e: { currentTarget: { value: string } }) =>
    setForm({ ...form, [k]: e.currentTarget.value });
  const submit = (e: Event) => {
    e.preventDefault();
    setQuery({
      limit: 100,
      sinceMinutes: Number(form.sinceMinutes) || 60,
      ...(form.service === '' ? {} : { service: form.service }),
      ...(form.name === '' ? {} : { name: form.name }),
      ...(form.minDurationMs === '' ? {} : { minDurationMs: Number(form.minDurationMs) }),
      ...(form.status === 'any' ? {} : { error: form.status === 'error' }),
      ...(form.traffic === 'any' ? {} : { stress: form.traffic === 'stress' }),
      ...(form.tag === '' ? {} : { tag: form.tag }),
    });
  };
  return (
    <>
      <Card wide>
        <form class="row" onSubmit={submit} data-testid="trace-search">
          <Field label="Service">
            <input name="service" value={form.service} onInput={set('service')} />
          </Field>
          <Field label="Operation">
            <input name="name" value={form.name} onInput={set('name')} />
          </Field>
          <Field label="Min duration (ms)">
            <input name="minDurationMs" value={form.minDurationMs} onInput={set('minDurationMs')} />
          </Field>
          <Field label="Status">
            <select name="status" value={form.status} onChange={set('status')}>
              <option value="any">any</option>
              <option value="error">errors</option>
              <option value="ok">ok</option>
            </select>
          </Field>
          <Field label="Traffic">
            <select name="traffic" value={form.traffic} onChange={set('traffic')}>
              <option value="any">any</option>
              <option value="real">real</option>
              <option value="stress">stress</option>
            </select>
          </Field>
          <Field label="Tag (key=value)">
            <input name="tag" value={form.tag} onInput={set('tag')} />
          </Field>
          <Field label="Last minutes">
            <input name="sinceMinutes" value={form.sinceMinutes} onInput={set('sinceMinutes')} />
          </Field>
          <Button kind="primary" submit>
            Search
          </Button>
        </form>
      </Card>
      <Card wide title={`Traces (${hits.data?.length ?? 0})`}>
        <ErrorBox error={hits.error} />
        <Table
          testId="trace-hits"
          rows={hits.data ?? []}
          empty="No trace matches."
          rowKey={(h) => h.traceId}
          onRow={(h) => navigate('traces', { trace: h.traceId })}
          columns={[
            { title: 'started', cell: (h) => when(h.startUs / 1000) },
            { title: 'service', cell: (h) => h.service },
            { title: 'operation', cell: (h) => h.name },
            { title: 'duration', cell: (h) => ms(h.durationUs / 1000), align: 'right' },
            {
              title: 'status',
              cell: (h) => (
                <>
                  {h.error ? <Badge tone="bad">error</Badge> : <Badge tone="ok">ok</Badge>}{' '}
                  {h.stress ? <Badge tone="stress">stress</Badge> : null}
                </>
              ),
            },
            { title: 'trace', cell: (h) => <code>{h.traceId}</code> },
          ]}
        />
      </Card>
    </>
  );
}

function SlowSql() {
  const slow = useLoad(() => api.telemetry.slowSql({ sinceMinutes: 60, limit: 50 }), []);
  return (
    <Card wide title="Slowest SQL (last hour, by mean time)">
      <ErrorBox error={slow.error} />
      <Table
        testId="slow-sql"
        rows={slow.data ?? []}
        empty="No SQL traced in the last hour."
        onRow={(s) => navigate('traces', { trace: s.slowestTraceId })}
        columns={[
          { title: 'statement', cell: (s) => <code>{s.statement ?? s.fingerprint}</code> },
          { title: 'service', cell: (s) => s.service },
          { title: 'shard', cell: (s) => s.shard ?? '–' },
          { title: 'caller', cell: (s) => s.caller ?? '–' },
          { title: 'calls', cell: (s) => num(s.calls), align: 'right' },
          { title: 'avg', cell: (s) => ms(s.avgMs), align: 'right' },
          { title: 'max', cell: (s) => ms(s.maxMs), align: 'right' },
          { title: 'trace', cell: () => <span class="link">waterfall</span> },
        ]}
      />
    </Card>
  );
}

export function TracesPage() {
  const route = useRoute();
  const trace = route.query.get('trace');
  const tab = route.query.get('tab') ?? 'search';
  if (trace !== null) return <TraceView traceId={trace} />;
  return (
    <div class="grid">
      <div class="wide">
        <Tabs
          tabs={[
            { id: 'search', title: 'Search' },
            { id: 'sql', title: 'Slow SQL' },
          ]}
          active={tab}
          onChange={(id) => navigate('traces', { tab: id })}
        />
      </div>
      {tab === 'sql' ? <SlowSql /> : <Search />}
    </div>
  );
}
