/**
 * Guard: an app's flow-control rules (governance/guard-rules in the config center, pushed to
 * every instance) edited per resource, with the config center's validation errors shown on
 * the field they name; the rules each instance reports in force; live pass, block and RT
 * per resource from the pushed per-second metrics.
 */
import { useEffect, useState } from 'preact/hooks';
import type { GuardRules } from '../../../admin/guard-admin.js';
import { api } from '../api.js';
import { TimeChart } from '../chart.js';
import { problemsOf, useItem } from '../config-editor.js';
import { useLoad } from '../hooks.js';
import { navigate, useRoute } from '../router.js';
import { useAuthor, useCanChange } from '../session.js';
import {
  ActionResult,
  Button,
  Card,
  ErrorBox,
  Field,
  ms,
  num,
  resourceName,
  Table,
  useAction,
  when,
} from '../ui.js';

type Row = Record<string, string>;

const FLOW_FIELDS = ['resource', 'count', 'grade', 'behavior', 'limitApp'] as const;
const DEGRADE_FIELDS = [
  'resource',
  'strategy',
  'threshold',
  'recoveryTimeoutMs',
  'maxRtMs',
] as const;
const NUMERIC = new Set(['count', 'threshold', 'recoveryTimeoutMs', 'maxRtMs']);

function toRows(list: readonly object[] | undefined, fields: readonly string[]): Row[] {
  return (list ?? []).map((r) => {
    const row: Row = {};
    for (const f of fields) {
      const v = (r as Record<string, unknown>)[f];
      if (v !== undefined) row[f] = String(v);
    }
    return row;
  });
}

function fromRows(rows: readonly Row[], extra: readonly object[]): object[] {
  return rows.map((row, i) => {
    const out: Record<string, unknown> = { ...((extra[i] ?? {}) as Record<string, unknown>) };
    for (const [k, v] of Object.entries(row)) {
      if (v === '') delete out[k];
      else out[k] = NUMERIC.has(k) && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v;
    }
    return out;
  });
}

function RuleTable(props: {
  kind: 'flow' | 'degrade';
  fields: readonly string[];
  rows: Row[];
  errors: Map<string, string>;
  onChange: (rows: Row[]) => void;
}) {
  const set = (i: number, f: string, v: string) =>
    props.onChange(props.rows.map((r, j) => (j === i ? { ...r, [f]: v } : r)));
  return (
    <div class="rules" data-testid={`rules-${props.kind}`}>
      {props.rows.map((row, i) => (
        <div class="row rule" key={String(i)}>
          {props.fields.map((f) => (
            <Field key={f} label={f} error={props.errors.get(`${props.kind}[${i}].${f}`)}>
              <input
                name={`${props.kind}.${i}.${f}`}
                value={row[f] ?? ''}
                onInput={(e) => set(i, f, e.currentTarget.value)}
              />
            </Field>
          ))}
          <Button onClick={() => props.onChange(props.rows.filter((_, j) => j !== i))}>
            Remove
          </Button>
          {props.errors.get(`${props.kind}[${i}]`) ? (
            <em class="field-error">{props.errors.get(`${props.kind}[${i}]`)}</em>
          ) : null}
        </div>
      ))}
      <Button onClick={() => props.onChange([...props.rows, { resource: '' }])}>
        Add {props.kind} rule
      </Button>
    </div>
  );
}

function RulesEditor(props: { app: string }) {
  const item = { app: props.app, group: 'governance', key: 'guard-rules' };
  const loaded = useItem(item);
  const [flow, setFlow] = useState<Row[]>([]);
  const [degrade, setDegrade] = useState<Row[]>([]);
  const [other, setOther] = useState('{}');
  const [base, setBase] = useState<GuardRules>({});
  const action = useAction();
  const canChange = useCanChange();
  const author = useAuthor();
  useEffect(() => {
    let rules: GuardRules = {};
    try {
      rules = loaded.data === undefined ? {} : (JSON.parse(loaded.data.value) as GuardRules);
    } catch {
      rules = {};
    }
    setBase(rules);
    setFlow(toRows(rules.flow, FLOW_FIELDS));
    setDegrade(toRows(rules.degrade, DEGRADE_FIELDS));
    const { flow: _f, degrade: _d, ...rest } = rules;
    setOther(JSON.stringify(rest, null, 2));
  }, [loaded.data]);
  const problems = problemsOf(action.error);
  const errors = new Map(problems.map((p) => [p.path.replace(/^\$\.?/, ''), p.reason]));
  const placed = new Set(
    [...errors.keys()].filter((k) => /^(flow|degrade)\[\d+\](\.\w+)?$/.test(k)),
  );
  const save = () =>
    action.run(async () => {
      let rest: object;
      try {
        rest = JSON.parse(other) as object;
      } catch (err) {
        throw new Error(`other rule kinds: not JSON (${(err as Error).message})`);
      }
      const rules = {
        ...rest,
        flow: fromRows(flow, base.flow ?? []),
        degrade: fromRows(degrade, base.degrade ?? []),
      };
      const r = await api.config.publish(item, {
        value: JSON.stringify(rules, null, 2),
        schema: { $peak: 'guard-rules' },
        expectedVersion: loaded.data?.version ?? 0,
        author,
        comment: 'guard rules from the console',
      });
      loaded.reload();
      return `published version ${r.version}: every instance following ${props.app}/governance/guard-rules applies it now`;
    });
  return (
    <Card wide title={`Rules of ${props.app} (governance/guard-rules)`} testId="guard-rules">
      <p class="muted small">
        {loaded.data === undefined ? 'not published yet' : `version ${loaded.data.version}`}
      </p>
      <h3>Flow (QPS or concurrency limits)</h3>
      <RuleTable kind="flow" fields={FLOW_FIELDS} rows={flow} errors={errors} onChange={setFlow} />
      <h3>Circuit breakers</h3>
      <RuleTable
        kind="degrade"
        fields={DEGRADE_FIELDS}
        rows={degrade}
        errors={errors}
        onChange={setDegrade}
      />
      <h3>Other kinds (param, system, authority) as JSON</h3>
      <textarea
        rows={6}
        spellcheck={false}
        aria-label="other rule kinds"
        value={other}
        onInput={(e) => setOther(e.currentTarget.value)}
      />
      {problems.filter((p) => !placed.has(p.path.replace(/^\$\.?/, ''))).length === 0 ? null : (
        <ul class="problems" data-testid="problems">
          {problems
            .filter((p) => !placed.has(p.path.replace(/^\$\.?/, '')))
            .map((p) => (
              <li key={p.path}>
                <code>{p.path}</code> {p.reason}
              </li>
            ))}
        </ul>
      )}
      <Button kind="primary" disabled={!canChange || action.busy} onClick={save}>
        Publish rules
      </Button>
      <ActionResult error={problems.length > 0 ? undefined : action.error} note={action.note} />
    </Card>
  );
}

function ResourceChart(props: { resource: string }) {
  const stats = useLoad(
    () => api.guard.stats(props.resource, { seconds: 120 }),
    [props.resource],
    1000,
  );
  const rows = stats.data?.rows ?? [];
  return (
    <Card wide title={`${props.resource}: pass, block and RT per second (guard reports)`}>
      <ErrorBox error={stats.error} />
      <TimeChart
        t={rows.map((r) => r.second)}
        leftUnit="per second"
        rightUnit="ms"
        lines={[
          { label: 'pass/s', values: rows.map((r) => r.pass), color: '#4f9dff' },
          { label: 'block/s', values: rows.map((r) => r.block), color: '#f5a623' },
          { label: 'errors/s', values: rows.map((r) => r.error), color: '#ff5d5d' },
          { label: 'RT ms', values: rows.map((r) => r.rtAvg), color: '#b67cff', right: true },
        ]}
      />
    </Card>
  );
}

export function GuardPage() {
  const route = useRoute();
  const apps = useLoad(() => api.config.apps(), []);
  const app = route.query.get('app') ?? apps.data?.[0]?.app ?? 'shop';
  const [appInput, setAppInput] = useState(app);
  useEffect(() => setAppInput(app), [app]);
  const resource = route.query.get('resource');
  const live = useLoad(() => api.telemetry.liveMetrics({ seconds: 5 }), [], 1000);
  const inForce = useLoad(() => api.guard.rules(), [], 5000);
  return (
    <div class="grid">
      <Card wide>
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault();
            navigate('guard', { app: appInput });
          }}
        >
          <Field label="App">
            <input
              name="app"
              value={appInput}
              onInput={(e) => setAppInput(e.currentTarget.value)}
            />
          </Field>
          <Button submit>Open</Button>
        </form>
      </Card>
      <RulesEditor key={app} app={app} />
      <Card wide title="Live per resource (last 5 s)" testId="guard-live">
        <ErrorBox error={live.error} />
        <Table
          rows={live.data?.resources ?? []}
          rowKey={(r) => `${r.service}/${r.resource}`}
          empty="No metrics pushed in the last 5 seconds."
          onRow={(r) => navigate('guard', { app, resource: r.resource })}
          columns={[
            { title: 'service', cell: (r) => r.service },
            { title: 'resource', cell: (r) => resourceName(r.resource) },
            { title: 'pass/s', cell: (r) => num(r.passQps), align: 'right' },
            { title: 'block/s', cell: (r) => num(r.blockQps), align: 'right' },
            { title: 'errors/s', cell: (r) => num(r.errorQps), align: 'right' },
            { title: 'RT avg', cell: (r) => ms(r.rtAvgMs), align: 'right' },
            { title: 'in flight', cell: (r) => num(r.concurrency), align: 'right' },
          ]}
        />
      </Card>
      {resource === null ? null : <ResourceChart resource={resource} />}
      <Card wide title="Rules in force, as instances report them">
        <ErrorBox error={inForce.error} />
        <Table
          rows={inForce.data ?? []}
          rowKey={(r) => `${r.app}/${r.instance}`}
          empty="No instance reports its rules."
          columns={[
            { title: 'app', cell: (r) => r.app },
            { title: 'instance', cell: (r) => <code>{r.instance}</code> },
            { title: 'flow', cell: (r) => r.rules.flow?.length ?? 0, align: 'right' },
            { title: 'breakers', cell: (r) => r.rules.degrade?.length ?? 0, align: 'right' },
            { title: 'param', cell: (r) => r.rules.param?.length ?? 0, align: 'right' },
            { title: 'system', cell: (r) => r.rules.system?.length ?? 0, align: 'right' },
            { title: 'reported', cell: (r) => when(r.lastSeen) },
          ]}
        />
      </Card>
    </div>
  );
}
