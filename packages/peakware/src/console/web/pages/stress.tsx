/**
 * Stress runs: every full-link stress run the control plane knows (`peak stress run`, its
 * agents), newest first; one run with its totals, latency percentiles, throughput and p99
 * per second (a chart), per step, per stage, its errors and its isolation check; steer a
 * running one (a new target rate or virtual users) or stop it. Capacity: each service's
 * measured capacity (`peak capacity probe`) with the steps that found it.
 */
import { useState } from 'preact/hooks';
import type {
  CapacityFigure,
  StressRunRecord,
  StressRunSummary,
} from '../../../admin/stress-admin.js';
import type { LoadModel } from '../../../stress/load-model.js';
import { api } from '../api.js';
import { TimeChart } from '../chart.js';
import { useLoad } from '../hooks.js';
import { navigate, useRoute } from '../router.js';
import { useCanChange } from '../session.js';
import {
  ActionResult,
  Badge,
  Button,
  Card,
  ErrorBox,
  ms,
  num,
  Stat,
  Table,
  useAction,
  when,
} from '../ui.js';

/** A load model in a few words. */
export function modelText(m: LoadModel): string {
  switch (m.kind) {
    case 'constant-rate':
      return `${num(m.rate, 0)}/s for ${m.durationS} s`;
    case 'virtual-users':
      return `${num(m.vus, 0)} virtual users for ${m.durationS} s`;
    case 'ramping-rate':
      return `from ${num(m.startRate, 0)}/s: ${m.stages.map((s) => `${num(s.rate, 0)}/s in ${s.durationS} s`).join(', ')}`;
    case 'steps':
      return `steps: ${m.stages.map((s) => `${num(s.rate, 0)}/s × ${s.durationS} s`).join(', ')}`;
  }
}

function RunBadge(props: { r: StressRunSummary }) {
  if (props.r.status === 'running') return <Badge tone="warn">running</Badge>;
  const tone = props.r.stopReason === 'sla' ? 'bad' : 'ok';
  return <Badge tone={tone}>{props.r.stopReason ?? 'finished'}</Badge>;
}

function RunDetail(props: { id: string; onChanged: () => void }) {
  const run = useLoad(() => api.stress.run(props.id), [props.id], 2000);
  const [target, setTarget] = useState('');
  const action = useAction();
  const canChange = useCanChange();
  const r: StressRunRecord | undefined = run.data;
  const running = r?.status === 'running';
  const steer = (what: 'target' | 'stop') =>
    action.run(async () => {
      if (what === 'stop') {
        await api.stress.stop(props.id);
        run.reload();
        props.onChanged();
        return `${props.id}: stop asked; its generator stops within a second`;
      }
      const n = Number(target);
      if (target.trim() === '' || !Number.isFinite(n) || n < 0)
        throw new Error(`target '${target}' is not a rate (a number, 0 or more)`);
      await api.stress.setTarget(props.id, n);
      run.reload();
      return `${props.id}: target ${num(n, 0)} asked; its generator follows within a second`;
    });
  const report = r?.report ?? null;
  const seconds = report?.seconds ?? [];
  const t0 = report?.startedAt ?? 0;
  return (
    <Card
      wide
      title={`Stress run ${props.id}`}
      testId="stress-run"
      actions={
        <>
          <input
            class="small-input"
            name="target"
            aria-label="new target"
            placeholder="target"
            value={target}
            onInput={(e) => setTarget(e.currentTarget.value)}
          />
          <Button disabled={!canChange || action.busy || !running} onClick={() => steer('target')}>
            Set target
          </Button>
          <Button
            kind="danger"
            disabled={!canChange || action.busy || !running}
            onClick={() => steer('stop')}
          >
            Stop
          </Button>
          <Button onClick={() => navigate('stress')}>Back to the runs</Button>
        </>
      }
    >
      <ErrorBox error={run.error} />
      <ActionResult error={action.error} note={action.note} />
      {r === undefined ? null : (
        <>
          <p data-testid="stress-run-state">
            <RunBadge r={r} /> {r.scenario}, {modelText(r.model)}
            {r.target === null ? '' : `, target set to ${num(r.target, 0)}`}; started{' '}
            {when(r.startedAt)}
            {r.finishedAt === null ? '' : `, finished ${when(r.finishedAt)}`}
            {r.agents.length > 0 ? `; agents: ${r.agents.map((a) => a.agentId).join(', ')}` : ''}
          </p>
          {report === null ? (
            <p class="empty">
              The report arrives when the run ends (its generator sends it to the control plane).
            </p>
          ) : (
            <>
              <div class="stats">
                <Stat
                  label="calls/s"
                  value={num(report.totals.throughput)}
                  testId="stress-throughput"
                />
                <Stat label="ok" value={num(report.totals.ok, 0)} testId="stress-ok" />
                <Stat
                  label="errors"
                  value={num(report.totals.errors, 0)}
                  tone={report.totals.errors > 0 ? 'bad' : ''}
                />
                <Stat label="p50" value={ms(report.latency.p50Ms)} />
                <Stat label="p99" value={ms(report.latency.p99Ms)} testId="stress-p99" />
                <Stat label="max" value={ms(report.latency.maxMs)} />
              </div>
              {report.stopDetail === undefined ? null : (
                <p class="error">stopped: {report.stopDetail}</p>
              )}
              <h3>Per second</h3>
              <TimeChart
                testId="stress-chart"
                t={seconds.map((s) => t0 + s.t * 1000)}
                leftUnit="calls/s"
                rightUnit="ms"
                lines={[
                  { label: 'ok/s', values: seconds.map((s) => s.ok), color: '#4caf50' },
                  { label: 'errors/s', values: seconds.map((s) => s.errors), color: '#e57373' },
                  { label: 'target', values: seconds.map((s) => s.target), color: '#8a93a6' },
                  {
                    label: 'p99 ms',
                    values: seconds.map((s) => s.p99Ms),
                    color: '#ffb74d',
                    right: true,
                  },
                ]}
              />
              <h3>Steps</h3>
              <Table
                testId="stress-steps"
                rows={report.steps}
                rowKey={(s) => s.name}
                columns={[
                  { title: 'step', cell: (s) => s.name },
                  { title: 'ok', cell: (s) => num(s.ok, 0), align: 'right' },
                  { title: 'errors', cell: (s) => num(s.errors, 0), align: 'right' },
                  { title: 'p50', cell: (s) => ms(s.latency.p50Ms), align: 'right' },
                  { title: 'p99', cell: (s) => ms(s.latency.p99Ms), align: 'right' },
                  { title: 'max', cell: (s) => ms(s.latency.maxMs), align: 'right' },
                ]}
              />
              {report.stages.length === 0 ? null : (
                <>
                  <h3>Stages</h3>
                  <Table
                    rows={report.stages}
                    rowKey={(s) => String(s.stage)}
                    columns={[
                      { title: 'stage', cell: (s) => num(s.stage + 1, 0) },
                      { title: 'seconds', cell: (s) => `${s.fromS}–${s.toS}` },
                      { title: 'calls/s', cell: (s) => num(s.throughput), align: 'right' },
                      { title: 'errors', cell: (s) => num(s.errors, 0), align: 'right' },
                      { title: 'p99', cell: (s) => ms(s.p99Ms), align: 'right' },
                    ]}
                  />
                </>
              )}
              {report.errors.length === 0 ? null : (
                <>
                  <h3>Errors</h3>
                  <Table
                    rows={report.errors}
                    rowKey={(e, i) => `${e.step}/${i}`}
                    columns={[
                      { title: 'step', cell: (e) => e.step },
                      { title: 'count', cell: (e) => num(e.count, 0), align: 'right' },
                      { title: 'error', cell: (e) => e.message },
                    ]}
                  />
                </>
              )}
            </>
          )}
          {r.isolation === null ? null : (
            <>
              <h3>Isolation check</h3>
              <p data-testid="stress-isolation">
                {r.isolation.ok ? (
                  <Badge tone="ok">no stress data outside the shadows</Badge>
                ) : (
                  <Badge tone="bad">{r.isolation.leaks.length} leak(s)</Badge>
                )}{' '}
                checked {when(r.isolation.checkedAt)}
              </p>
              {r.isolation.leaks.length === 0 ? null : (
                <Table
                  rows={r.isolation.leaks}
                  rowKey={(_l, i) => String(i)}
                  columns={[
                    { title: 'kind', cell: (l) => l.kind },
                    { title: 'where', cell: (l) => <code>{l.where}</code> },
                    { title: 'count', cell: (l) => num(l.count, 0), align: 'right' },
                    { title: 'samples', cell: (l) => l.samples?.join(', ') ?? '' },
                  ]}
                />
              )}
            </>
          )}
        </>
      )}
    </Card>
  );
}

export function StressPage() {
  const route = useRoute();
  const id = route.query.get('run') ?? undefined;
  const runs = useLoad(() => api.stress.runs(100), [], 3000);
  return (
    <div class="grid">
      {id === undefined ? null : <RunDetail id={id} onChanged={runs.reload} />}
      <Card wide title="Stress runs (newest first)" testId="stress-runs">
        <ErrorBox error={runs.error} />
        <Table
          testId="stress-run-list"
          rows={runs.data ?? []}
          rowKey={(r) => r.id}
          empty="No stress run yet. Start one with `peak stress run <scenario>`."
          onRow={(r) => navigate('stress', { run: r.id })}
          selected={(r) => r.id === id}
          columns={[
            { title: 'run', cell: (r) => <code>{r.id}</code> },
            { title: 'scenario', cell: (r) => r.scenario },
            { title: 'load', cell: (r) => modelText(r.model) },
            { title: 'state', cell: (r) => <RunBadge r={r} /> },
            { title: 'started', cell: (r) => when(r.startedAt) },
            {
              title: 'calls/s',
              cell: (r) => (r.totals === null ? '–' : num(r.totals.throughput)),
              align: 'right',
            },
            {
              title: 'errors',
              cell: (r) => (r.totals === null ? '–' : num(r.totals.errors, 0)),
              align: 'right',
            },
            {
              title: 'p99',
              cell: (r) => (r.latency === null ? '–' : ms(r.latency.p99Ms)),
              align: 'right',
            },
            {
              title: 'isolated',
              cell: (r) =>
                r.isolated === null ? (
                  '–'
                ) : r.isolated ? (
                  <Badge tone="ok">yes</Badge>
                ) : (
                  <Badge tone="bad">leaked</Badge>
                ),
            },
          ]}
        />
      </Card>
    </div>
  );
}

function CapacitySteps(props: { figure: CapacityFigure }) {
  const f = props.figure;
  return (
    <Card
      wide
      title={`How ${f.service} was probed (instance ${f.instance})`}
      testId="capacity-steps"
    >
      <p class="muted">
        SLA: p99 ≤ {ms(f.sla.p99Ms)}, errors ≤ {num(f.sla.errorRate * 100, 2)} %
        {f.sla.cpu === undefined ? '' : `, CPU ≤ ${num(f.sla.cpu * 100, 0)} % of a core`}; the
        instance's weight raised step by step until a step broke it.
      </p>
      <Table
        rows={f.steps}
        rowKey={(_s, i) => String(i)}
        columns={[
          { title: 'weight', cell: (s) => num(s.weight, 0), align: 'right' },
          { title: 'calls/s', cell: (s) => num(s.qps), align: 'right' },
          { title: 'p99', cell: (s) => ms(s.p99Ms), align: 'right' },
          { title: 'errors', cell: (s) => `${num(s.errorRate * 100, 2)} %`, align: 'right' },
          {
            title: 'CPU',
            cell: (s) => (s.cpu === undefined ? '–' : `${num(s.cpu * 100, 0)} %`),
            align: 'right',
          },
          {
            title: 'within the SLA',
            cell: (s) => (s.passed ? <Badge tone="ok">yes</Badge> : <Badge tone="bad">no</Badge>),
          },
        ]}
      />
    </Card>
  );
}

export function CapacityPage() {
  const route = useRoute();
  const service = route.query.get('service') ?? undefined;
  const figures = useLoad(() => api.stress.capacity(), [], 10_000);
  const picked = (figures.data ?? []).find((f) => f.service === service);
  return (
    <div class="grid">
      <Card wide title="Measured capacity, one instance each" testId="capacity">
        <ErrorBox error={figures.error} />
        <Table
          testId="capacity-figures"
          rows={figures.data ?? []}
          rowKey={(f) => f.service}
          empty="No figure yet. Measure one with `peak capacity probe`; `peak capacity plan` turns figures and targets into instance counts."
          onRow={(f) => navigate('capacity', { service: f.service })}
          selected={(f) => f.service === service}
          columns={[
            { title: 'service', cell: (f) => f.service },
            { title: 'instance', cell: (f) => f.instance },
            { title: 'max calls/s', cell: (f) => num(f.maxQps), align: 'right' },
            { title: 'p99 there', cell: (f) => ms(f.p99Ms), align: 'right' },
            { title: 'SLA p99', cell: (f) => ms(f.sla.p99Ms), align: 'right' },
            { title: 'steps', cell: (f) => num(f.steps.length, 0), align: 'right' },
            { title: 'measured', cell: (f) => when(f.measuredAt) },
          ]}
        />
      </Card>
      {picked === undefined ? null : <CapacitySteps figure={picked} />}
    </div>
  );
}
