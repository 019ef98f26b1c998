/** Alerts: the SLA rules and whether each fires, silences, and fired/resolved events. */
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { useLoad } from '../hooks.js';
import { useCanChange } from '../session.js';
import { ActionResult, Badge, Button, Card, ErrorBox, num, Table, useAction, when } from '../ui.js';

export function AlertsPage() {
  const rules = useLoad(() => api.alerts.rules(), [], 5000);
  const events = useLoad(() => api.alerts.events({ limit: 100 }), [], 5000);
  const evaluator = useLoad(() => api.alerts.evaluator(), []);
  const [minutes, setMinutes] = useState('30');
  const action = useAction();
  const canChange = useCanChange();
  const silence = (name: string, m: number) =>
    action.run(async () => {
      const r = await api.alerts.silence(name, m);
      rules.reload();
      return m === 0
        ? `${name}: silence lifted`
        : `${name} silenced until ${when(r.silencedUntil)}`;
    });
  return (
    <div class="grid">
      <Card
        wide
        title="Rules"
        testId="alert-rules"
        actions={
          <label class="inline">
            silence for{' '}
            <input
              class="small-input"
              aria-label="silence minutes"
              value={minutes}
              onInput={(e) => setMinutes(e.currentTarget.value)}
            />{' '}
            min
          </label>
        }
      >
        <ErrorBox error={rules.error} />
        <ActionResult error={action.error} note={action.note} />
        <Table
          rows={rules.data ?? []}
          rowKey={(r) => r.name}
          empty="No alert rule. Add them with `peak alert set` or admin.alerts.putRule."
          columns={[
            { title: 'rule', cell: (r) => r.name },
            { title: 'kind', cell: (r) => r.kind },
            {
              title: 'watches',
              cell: (r) =>
                r.kind === 'mq-backlog'
                  ? `${r.group} on ${r.topic}`
                  : `${r.service}${r.endpoint ? ` ${r.endpoint}` : ''}${r.resource ? ` ${r.resource}` : ''}`,
            },
            { title: 'threshold', cell: (r) => num(r.threshold), align: 'right' },
            { title: 'value', cell: (r) => num(r.value), align: 'right' },
            {
              title: 'state',
              cell: (r) =>
                r.firing ? <Badge tone="bad">firing</Badge> : <Badge tone="ok">ok</Badge>,
            },
            {
              title: 'silenced until',
              cell: (r) =>
                r.silencedUntil !== undefined && Date.parse(r.silencedUntil) > Date.now()
                  ? when(r.silencedUntil)
                  : '–',
            },
            {
              title: '',
              cell: (r) => (
                <span class="inline">
                  <Button
                    disabled={!canChange || action.busy}
                    onClick={() => silence(r.name, Number(minutes))}
                  >
                    Silence
                  </Button>
                  <Button disabled={!canChange || action.busy} onClick={() => silence(r.name, 0)}>
                    Lift
                  </Button>
                </span>
              ),
            },
          ]}
        />
        <p class="muted small">
          Evaluated by node {evaluator.data?.node ?? '–'}
          {evaluator.data?.evaluating ? ' (this one)' : ''}.
        </p>
      </Card>
      <Card wide title="Events" testId="alert-events">
        <ErrorBox error={events.error} />
        <Table
          rows={events.data ?? []}
          rowKey={(e) => String(e.id)}
          empty="No alert has fired."
          columns={[
            { title: 'when', cell: (e) => when(e.at) },
            { title: 'rule', cell: (e) => e.rule },
            {
              title: 'state',
              cell: (e) => <Badge tone={e.state === 'fired' ? 'bad' : 'ok'}>{e.state}</Badge>,
            },
            { title: 'value', cell: (e) => num(e.value), align: 'right' },
            { title: 'calls/s', cell: (e) => num(e.qps), align: 'right' },
            { title: 'webhook', cell: (e) => e.delivery },
          ]}
        />
      </Card>
    </div>
  );
}
