/**
 * Overview: services and instances registered, calls/s, errors/s and p99 live per second,
 * the busiest resources, alerts firing, stress traffic shown apart from real traffic, and
 * what is under way: plans applied, stress runs going, global transactions unfinished.
 */
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { TimeChart } from '../chart.js';
import { useLoad } from '../hooks.js';
import { useLiveSeries } from '../live-series.js';
import { navigate } from '../router.js';
import {
  Badge,
  Card,
  ErrorBox,
  ms,
  num,
  PageLink,
  resourceName,
  Stat,
  Table,
  Tabs,
  when,
} from '../ui.js';

/** The chart ranges: live (5 min per second), then the history tiers. */
export const RANGES = [
  { id: 'live', title: 'Live 5 min', ms: undefined },
  { id: '1h', title: '1 hour', ms: 3_600_000 },
  { id: '1d', title: '1 day', ms: 86_400_000 },
  { id: '7d', title: '7 days', ms: 7 * 86_400_000 },
] as const;

/** Unfinished global transactions counted at most (the figure says "1000+" past it). */
const UNFINISHED_SHOWN = 1000;

export function OverviewPage() {
  const [range, setRange] = useState<string>('live');
  const rangeMs = RANGES.find((r) => r.id === range)?.ms;
  const live = useLiveSeries({ by: 'total' }, 300, rangeMs);
  const services = useLoad(() => api.registry.services(), [], 5000);
  const resources = useLoad(() => api.telemetry.liveMetrics({ seconds: 10 }), [], 2000);
  const alerts = useLoad(() => api.alerts.rules(), [], 5000);
  const endpoints = useLoad(() => api.telemetry.endpoints({ sinceMinutes: 1 }), [], 5000);
  const plans = useLoad(() => api.drill.plans(), [], 5000);
  const runs = useLoad(() => api.stress.runs(20), [], 5000);
  const unfinished = useLoad(
    () => api.txn.list({ status: 'active', limit: UNFINISHED_SHOWN }),
    [],
    5000,
  );

  const keys = services.data ?? [];
  const names = new Set(keys.map((s) => s.service));
  const up = keys.reduce((n, s) => n + s.up, 0);
  const offline = keys.reduce((n, s) => n + s.offline, 0);
  const p = live.points;
  const lastIndex = p.t.length - 1;
  const firing = (alerts.data ?? []).filter((r) => r.firing);
  const eps = endpoints.data ?? [];
  const stress = eps.filter((e) => e.stress);
  const real = eps.filter((e) => !e.stress);
  const sum = (list: typeof eps, f: (e: (typeof eps)[number]) => number) =>
    list.reduce((n, e) => n + f(e), 0);
  const applied = (plans.data ?? []).filter((p) => p.applied);
  const going = (runs.data ?? []).filter((r) => r.status === 'running');
  const open = unfinished.data ?? [];
  const parked = open.filter((t) => t.parked).length;

  return (
    <div class="grid">
      <div class="stats wide">
        <Stat label="services" value={num(names.size)} testId="stat-services" />
        <Stat label="instances up" value={num(up)} testId="stat-instances" />
        <Stat label="offline" value={num(offline)} tone={offline > 0 ? 'warn' : ''} />
        <Stat label="calls/s" value={num(p.calls[lastIndex])} testId="stat-calls" />
        <Stat
          label="errors/s"
          value={num(p.errors[lastIndex])}
          tone={(p.errors[lastIndex] ?? 0) > 0 ? 'bad' : ''}
        />
        <Stat label="p99" value={ms(p.p99[lastIndex])} />
        <Stat
          label="alerts firing"
          value={num(firing.length)}
          tone={firing.length > 0 ? 'bad' : 'ok'}
          testId="stat-alerts"
        />
      </div>
      <Card
        wide
        title="Traffic"
        actions={<Tabs tabs={RANGES} active={range} onChange={setRange} />}
        testId="traffic"
      >
        <ErrorBox error={live.error} />
        <TimeChart
          testId="live-chart"
          t={p.t}
          height={220}
          leftUnit="per second"
          rightUnit="ms"
          lines={[
            { label: 'calls/s', values: p.calls, color: '#4f9dff' },
            { label: 'errors/s', values: p.errors, color: '#ff5d5d' },
            { label: 'blocked/s', values: p.blocked, color: '#f5a623' },
            { label: 'p99 ms', values: p.p99, color: '#b67cff', right: true },
          ]}
        />
        <p class="muted small" data-testid="chart-updates" data-updates={live.updates}>
          {range === 'live'
            ? 'per second, updated every second'
            : `per ${live.stepSeconds === 1 ? 'second' : live.stepSeconds === 60 ? 'minute' : 'hour'}`}
          ; p99 is the highest any instance reported.
        </p>
      </Card>
      <Card title="Stress traffic" testId="stress">
        {stress.length === 0 ? (
          <p class="muted">
            No stress run in progress (no stress-tagged spans in the last minute).
          </p>
        ) : (
          <>
            <p>
              <Badge tone="stress">stress run in progress</Badge>
            </p>
            <div class="stats">
              <Stat label="stress calls (1 min)" value={num(sum(stress, (e) => e.calls))} />
              <Stat label="stress errors" value={num(sum(stress, (e) => e.errors))} />
              <Stat label="worst stress p99" value={ms(Math.max(...stress.map((e) => e.p99Ms)))} />
            </div>
          </>
        )}
        <p class="muted small">
          Real traffic in the last minute: {num(sum(real, (e) => e.calls))} traced calls,{' '}
          {num(sum(real, (e) => e.errors))} errors.
        </p>
      </Card>
      <Card title="Under way" testId="under-way">
        <ErrorBox error={plans.error ?? runs.error ?? unfinished.error} />
        <div class="stats">
          <Stat
            label="plans applied"
            value={num(applied.length)}
            tone={applied.length > 0 ? 'warn' : ''}
            testId="stat-plans-applied"
          />
          <Stat
            label="stress runs going"
            value={num(going.length)}
            tone={going.length > 0 ? 'stress' : ''}
            testId="stat-stress-going"
          />
          <Stat
            label="transactions unfinished"
            value={`${num(open.length)}${open.length >= UNFINISHED_SHOWN ? '+' : ''}`}
            tone={parked > 0 ? 'bad' : open.length > 0 ? 'warn' : ''}
            testId="stat-txn-unfinished"
          />
        </div>
        <p class="muted small" data-testid="under-way-detail">
          {applied.length === 0
            ? 'No plan applied'
            : `Applied: ${applied.map((p) => p.name).join(', ')}`}
          {going.length === 0 ? '' : `; running: ${going.map((r) => r.scenario).join(', ')}`}
          {parked === 0 ? '' : `; ${num(parked)} transaction(s) parked after the retry limit`}.{' '}
          <PageLink page="plans">plans</PageLink>
          {' · '}
          <PageLink page="stress">stress runs</PageLink>
          {' · '}
          <PageLink page="transactions" query={{ status: 'active' }}>
            unfinished transactions
          </PageLink>
        </p>
      </Card>
      <Card title="Alerts firing" testId="alerts-firing">
        <ErrorBox error={alerts.error} />
        <Table
          rows={firing}
          empty="No alert is firing."
          columns={[
            { title: 'rule', cell: (r) => r.name },
            { title: 'kind', cell: (r) => r.kind },
            { title: 'value', cell: (r) => num(r.value), align: 'right' },
            { title: 'threshold', cell: (r) => num(r.threshold), align: 'right' },
          ]}
          onRow={() => navigate('alerts')}
        />
      </Card>
      <Card wide title="Busiest resources (last 10 s)">
        <ErrorBox error={resources.error} />
        <Table
          testId="resources"
          rows={(resources.data?.resources ?? []).slice(0, 15)}
          empty="No metrics pushed in the last 10 seconds."
          rowKey={(r) => `${r.service}/${r.resource}`}
          columns={[
            { title: 'service', cell: (r) => r.service },
            { title: 'resource', cell: (r) => resourceName(r.resource) },
            { title: 'instances', cell: (r) => r.instances, align: 'right' },
            { title: 'calls/s', cell: (r) => num(r.qps), align: 'right' },
            { title: 'errors/s', cell: (r) => num(r.errorQps), align: 'right' },
            { title: 'blocked/s', cell: (r) => num(r.blockQps), align: 'right' },
            { title: 'RT avg', cell: (r) => ms(r.rtAvgMs), align: 'right' },
            { title: 'p99', cell: (r) => ms(r.rtP99Ms), align: 'right' },
            { title: 'last', cell: (r) => when(r.lastSecond) },
          ]}
          onRow={(r) => navigate('services', { service: r.service })}
        />
      </Card>
    </div>
  );
}
