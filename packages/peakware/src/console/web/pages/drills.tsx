/**
 * Drills: an app's injected faults as the control plane published them, and what each live
 * instance reports holding (a fault ends on its own after its duration, when stopped, or when
 * the instance loses the control plane); inject a fault, stop one, a drill's, or all. Plans:
 * stored promotion plans, what applying one would change (a diff per item), its applies and
 * rollbacks; runs scheduled ahead (cancel with one click); apply or roll back with one click. The same calls as `peak drill` and `peak plan`.
 */
import { useState } from 'preact/hooks';
import type { PlanDiffEntry } from '../../../admin/drill-admin.js';
import {
  FAULT_KINDS,
  FAULT_POINTS,
  type FaultKind,
  type FaultPoint,
  type FaultRequest,
} from '../../../drill/fault-spec.js';
import { api } from '../api.js';
import { useLoad } from '../hooks.js';
import { navigate, useRoute } from '../router.js';
import { useAuthor, useCanChange } from '../session.js';
import {
  ActionResult,
  Badge,
  Button,
  Card,
  DiffLines,
  ErrorBox,
  Field,
  ms,
  num,
  Table,
  useAction,
  when,
} from '../ui.js';

/** A fault's match and scope in a few words. */
function aims(f: Pick<FaultRequest, 'match' | 'scope'>): string {
  const parts = [
    ...Object.entries(f.match ?? {}).map(([k, v]) => `${k} ${String(v)}`),
    ...(f.scope?.instances === undefined ? [] : [`instances ${f.scope.instances.join(', ')}`]),
    ...(f.scope?.tags === undefined ? [] : [`tags ${f.scope.tags.join(', ')}`]),
    ...(f.scope?.callers === undefined ? [] : [`callers ${f.scope.callers.join(', ')}`]),
    ...(f.scope?.percent === undefined ? [] : [`${f.scope.percent} % of calls`]),
    ...(f.scope?.stressOnly === true ? ['stress traffic only'] : []),
  ];
  return parts.length === 0 ? 'every call' : parts.join('; ');
}

/** A whole number typed in a field, within bounds, or a clear error. */
function whole(text: string, what: string, min: number, max: number): number {
  const n = Number(text.trim());
  if (text.trim() === '' || !Number.isInteger(n) || n < min || n > max)
    throw new Error(`${what} '${text}' is not a whole number from ${min} to ${max}`);
  return n;
}

function InjectForm(props: { app: string; onDone: () => void }) {
  const [kind, setKind] = useState<FaultKind>('delay');
  const [point, setPoint] = useState<FaultPoint>('rpc-server');
  const [durationS, setDurationS] = useState('60');
  const [delayMs, setDelayMs] = useState('200');
  const [code, setCode] = useState('');
  const [percent, setPercent] = useState('100');
  const [service, setService] = useState('');
  const [drill, setDrill] = useState('');
  const action = useAction();
  const canChange = useCanChange();
  const author = useAuthor();
  const inject = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      const request: FaultRequest = {
        kind,
        point,
        durationMs: whole(durationS, 'duration (s)', 1, 3600) * 1000,
        ...(kind === 'delay' || kind === 'timeout'
          ? { delayMs: whole(delayMs, 'delay (ms)', 0, 3_600_000) }
          : {}),
        ...(kind === 'error' && code.trim() !== '' ? { code: code.trim() } : {}),
        ...(service.trim() === '' || !point.startsWith('rpc-')
          ? {}
          : { match: { service: service.trim() } }),
        scope: { percent: whole(percent, 'share of calls (%)', 0, 100) },
        ...(drill.trim() === '' ? {} : { drill: drill.trim() }),
      };
      const r = await api.drill.inject(props.app, [request], author);
      props.onDone();
      return `injected ${r.faults.map((f) => f.id).join(', ')} (${kind} at ${point}) into ${props.app}`;
    });
  };
  return (
    <Card wide title={`Inject a fault into ${props.app}`} testId="drill-inject">
      <form class="row" onSubmit={inject}>
        <Field label="kind">
          <select
            name="kind"
            value={kind}
            onChange={(e) => setKind(e.currentTarget.value as FaultKind)}
          >
            {FAULT_KINDS.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </Field>
        <Field label="at">
          <select
            name="point"
            value={point}
            onChange={(e) => setPoint(e.currentTarget.value as FaultPoint)}
          >
            {FAULT_POINTS.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </Field>
        <Field label="for (s)">
          <input
            class="small-input"
            name="durationS"
            value={durationS}
            onInput={(e) => setDurationS(e.currentTarget.value)}
          />
        </Field>
        {kind === 'delay' || kind === 'timeout' ? (
          <Field label="delay (ms)">
            <input
              class="small-input"
              name="delayMs"
              value={delayMs}
              onInput={(e) => setDelayMs(e.currentTarget.value)}
            />
          </Field>
        ) : null}
        {kind === 'error' ? (
          <Field label="error code">
            <input
              name="code"
              placeholder="PEAK_DRILL_INJECTED"
              value={code}
              onInput={(e) => setCode(e.currentTarget.value)}
            />
          </Field>
        ) : null}
        <Field label="% of calls">
          <input
            class="small-input"
            name="percent"
            value={percent}
            onInput={(e) => setPercent(e.currentTarget.value)}
          />
        </Field>
        {point.startsWith('rpc-') ? (
          <Field label="RPC service (optional)">
            <input
              name="service"
              value={service}
              onInput={(e) => setService(e.currentTarget.value)}
            />
          </Field>
        ) : null}
        <Field label="drill (a label to stop it by)">
          <input name="drill" value={drill} onInput={(e) => setDrill(e.currentTarget.value)} />
        </Field>
        <Button kind="danger" submit disabled={!canChange || action.busy}>
          Inject
        </Button>
      </form>
      <ActionResult error={action.error} note={action.note} />
    </Card>
  );
}

export function DrillsPage() {
  const route = useRoute();
  const app = route.query.get('app') ?? 'shop';
  const [typed, setTyped] = useState(app);
  const apps = useLoad(() => api.config.apps(), []);
  const status = useLoad(() => api.drill.status(app), [app], 2000);
  const action = useAction();
  const canChange = useCanChange();
  const author = useAuthor();
  const stop = (which: { drill?: string; ids?: string[] }, what: string) =>
    action.run(async () => {
      const r = await api.drill.stop(app, { ...which, author });
      status.reload();
      return r.stopped.length === 0
        ? `nothing to stop (${what})`
        : `stopped ${r.stopped.join(', ')} (${what}); every instance ends it when the change reaches it`;
    });
  const faults = status.data?.faults ?? [];
  const drills = [...new Set(faults.flatMap((f) => (f.drill === undefined ? [] : [f.drill])))];
  return (
    <div class="grid">
      <Card
        wide
        title={`Faults published for ${app}`}
        testId="drill-faults"
        actions={
          <form
            class="inline"
            onSubmit={(e) => {
              e.preventDefault();
              navigate('drills', { app: typed.trim() });
            }}
          >
            <input
              name="app"
              aria-label="app"
              list="drill-apps"
              value={typed}
              onInput={(e) => setTyped(e.currentTarget.value)}
            />
            <datalist id="drill-apps">
              {(apps.data ?? []).map((a) => (
                <option key={a.app} value={a.app} />
              ))}
            </datalist>
            <Button submit>Show</Button>
            {drills.map((d) => (
              <Button
                key={d}
                kind="danger"
                disabled={!canChange || action.busy}
                onClick={() => stop({ drill: d }, `drill ${d}`)}
              >
                Stop drill {d}
              </Button>
            ))}
            <Button
              kind="danger"
              disabled={!canChange || action.busy || faults.length === 0}
              onClick={() => stop({}, 'all of them')}
            >
              Stop all
            </Button>
          </form>
        }
      >
        <ErrorBox error={status.error} />
        <ActionResult error={action.error} note={action.note} />
        <Table
          testId="drill-fault-list"
          rows={faults}
          rowKey={(f) => f.id}
          empty={`No fault is published for ${app}.`}
          columns={[
            { title: 'fault', cell: (f) => <code>{f.id}</code> },
            { title: 'drill', cell: (f) => f.drill ?? '–' },
            { title: 'kind', cell: (f) => <Badge tone="bad">{f.kind}</Badge> },
            { title: 'at', cell: (f) => f.point },
            {
              title: 'what',
              cell: (f) =>
                f.kind === 'delay' || f.kind === 'timeout'
                  ? ms(f.delayMs)
                  : f.kind === 'error'
                    ? (f.code ?? 'PEAK_DRILL_INJECTED')
                    : '',
            },
            { title: 'aimed at', cell: (f) => aims(f) },
            { title: 'injected', cell: (f) => when(f.createdAt) },
            { title: 'ends by', cell: (f) => when(f.createdAt + f.durationMs) },
            {
              title: '',
              cell: (f) => (
                <Button
                  disabled={!canChange || action.busy}
                  onClick={() => stop({ ids: [f.id] }, f.id)}
                >
                  Stop
                </Button>
              ),
            },
          ]}
        />
      </Card>
      <Card wide title="What the instances hold (their own reports)" testId="drill-instances">
        <Table
          testId="drill-instance-list"
          rows={status.data?.instances ?? []}
          rowKey={(i) => i.boot}
          empty={`No instance of ${app} reports: its processes run a DrillAgent (peakware/drill).`}
          columns={[
            { title: 'instance', cell: (i) => i.instanceId },
            { title: 'service', cell: (i) => i.service ?? '–' },
            { title: 'tags', cell: (i) => i.tags.join(', ') },
            {
              title: 'state',
              cell: (i) =>
                i.live ? <Badge tone="ok">live</Badge> : <Badge tone="warn">silent</Badge>,
            },
            {
              title: 'holds',
              cell: (i) =>
                i.active.length === 0
                  ? 'nothing'
                  : i.active
                      .map((a) => `${a.id} (${a.kind} at ${a.point}, ${num(a.hits, 0)} hits)`)
                      .join('; '),
            },
            { title: 'ended', cell: (i) => num(i.ended.length, 0), align: 'right' },
            { title: 'last report', cell: (i) => `${ms(i.ageMs)} ago` },
          ]}
        />
      </Card>
      <InjectForm app={app} onDone={status.reload} />
    </div>
  );
}

function DiffView(props: { changes: PlanDiffEntry[] }) {
  return (
    <>
      {props.changes.map((c) => (
        <div key={String(c.index)}>
          <h3>
            {c.kind}: {c.item} {c.version === null ? '(new)' : `(v${c.version} in force)`}
            {c.same ? ' — already so' : ''}
          </h3>
          <DiffLines lines={c.diff} />
        </div>
      ))}
    </>
  );
}

function PlanDetail(props: { name: string; onChanged: () => void }) {
  const plan = useLoad(() => api.drill.plan(props.name), [props.name]);
  const diff = useLoad(() => api.drill.diff(props.name), [props.name]);
  const action = useAction();
  const canChange = useCanChange();
  const author = useAuthor();
  const act = (what: 'apply' | 'rollback') =>
    action.run(async () => {
      const run =
        what === 'apply'
          ? await api.drill.apply(props.name, { author, comment: 'from the console' })
          : await api.drill.rollback(props.name, { author, comment: 'from the console' });
      plan.reload();
      diff.reload();
      props.onChanged();
      return `${what === 'apply' ? 'applied' : 'rolled back'}: ${run.items
        .map((i) => `${i.group}/${i.key} v${i.after}`)
        .join(', ')}`;
    });
  return (
    <Card
      wide
      title={`Plan ${props.name}`}
      testId="plan-detail"
      actions={
        <>
          <Button kind="primary" disabled={!canChange || action.busy} onClick={() => act('apply')}>
            Apply
          </Button>
          <Button disabled={!canChange || action.busy} onClick={() => act('rollback')}>
            Roll back
          </Button>
        </>
      }
    >
      <ErrorBox error={plan.error ?? diff.error} />
      <ActionResult error={action.error} note={action.note} />
      {plan.data?.plan.description === undefined ? null : <p>{plan.data.plan.description}</p>}
      <h3>What applying it changes now</h3>
      <div data-testid="plan-diff">
        <DiffView changes={diff.data ?? []} />
      </div>
      <h3>Scheduled</h3>
      <Table
        testId="plan-schedules"
        rows={plan.data?.schedules ?? []}
        rowKey={(sc) => String(sc.id)}
        empty="Nothing scheduled. Set a run ahead with `peak plan schedule NAME --at TIME`."
        columns={[
          { title: 'due', cell: (sc) => when(sc.at) },
          { title: 'what', cell: (sc) => sc.action },
          {
            title: 'repeats',
            cell: (sc) =>
              sc.everyMs == null
                ? 'once'
                : `every ${sc.everyMs % 86_400_000 === 0 ? `${sc.everyMs / 86_400_000}d` : sc.everyMs % 3_600_000 === 0 ? `${sc.everyMs / 3_600_000}h` : `${Math.round(sc.everyMs / 60_000)}m`}`,
          },
          { title: 'state', cell: (sc) => sc.state },
          { title: 'set by', cell: (sc) => sc.author },
          { title: 'comment', cell: (sc) => sc.comment },
          {
            title: '',
            cell: (sc) =>
              sc.state !== 'pending' ? null : (
                <Button
                  disabled={!canChange || action.busy}
                  onClick={() =>
                    action.run(async () => {
                      await api.drill.cancelSchedule(sc.id, author);
                      plan.reload();
                      return `schedule ${sc.id} (${sc.action} at ${sc.at}) cancelled`;
                    })
                  }
                >
                  Cancel
                </Button>
              ),
          },
        ]}
      />
      <h3>Applies and rollbacks</h3>
      <Table
        testId="plan-runs"
        rows={plan.data?.runs ?? []}
        rowKey={(r) => String(r.id)}
        empty="Never applied."
        columns={[
          { title: 'when', cell: (r) => when(r.at) },
          { title: 'what', cell: (r) => r.action },
          { title: 'who', cell: (r) => r.actor },
          {
            title: 'items',
            cell: (r) =>
              r.items
                .map((i) => `${i.group}/${i.key} v${i.before ?? '–'} → v${i.after}`)
                .join(', '),
          },
          { title: 'comment', cell: (r) => r.comment },
        ]}
      />
    </Card>
  );
}

export function PlansPage() {
  const route = useRoute();
  const name = route.query.get('plan') ?? undefined;
  const plans = useLoad(() => api.drill.plans(), [], 5000);
  return (
    <div class="grid">
      <Card wide title="Plans" testId="plans">
        <ErrorBox error={plans.error} />
        <Table
          testId="plan-list"
          rows={plans.data ?? []}
          rowKey={(p) => p.name}
          empty="No plan. Store one with `peak plan put <file>`."
          onRow={(p) => navigate('plans', { plan: p.name })}
          selected={(p) => p.name === name}
          columns={[
            { title: 'plan', cell: (p) => p.name },
            { title: 'app', cell: (p) => p.app },
            { title: 'description', cell: (p) => p.description },
            { title: 'changes', cell: (p) => num(p.changes, 0), align: 'right' },
            {
              title: 'state',
              cell: (p) =>
                p.applied ? (
                  <Badge tone="warn">applied</Badge>
                ) : (
                  <Badge tone="ok">not applied</Badge>
                ),
            },
            { title: 'stored by', cell: (p) => p.updatedBy },
            { title: 'stored', cell: (p) => when(p.updatedAt) },
          ]}
        />
      </Card>
      {name === undefined ? null : <PlanDetail name={name} onChanged={plans.reload} />}
    </div>
  );
}
