/**
 * Services: every service key with its instances (weight, group, tags, status, lease), an
 * instance taken offline (gracefully: it stays registered, gets no new calls) or back, its
 * weight set; the service's traffic over time; and the routing rules and weights items the
 * RPC clients follow.
 */
import { useState } from 'preact/hooks';
import type { InstanceView } from '../../../admin/registry-admin.js';
import { api } from '../api.js';
import { TimeChart } from '../chart.js';
import { ConfigJsonEditor } from '../config-editor.js';
import { useLoad } from '../hooks.js';
import { useLiveSeries } from '../live-series.js';
import { navigate, useRoute } from '../router.js';
import { useCanChange } from '../session.js';
import {
  ActionResult,
  Badge,
  Button,
  Card,
  ErrorBox,
  Field,
  Table,
  Tabs,
  useAction,
  when,
} from '../ui.js';
import { RANGES } from './overview.js';

function WeightCell(props: { instance: InstanceView; onDone: () => void }) {
  const [weight, setWeight] = useState(String(props.instance.weight));
  const action = useAction();
  const canChange = useCanChange();
  return (
    <span class="inline">
      <input
        class="small-input"
        aria-label={`weight of ${props.instance.instanceId}`}
        value={weight}
        onInput={(e) => setWeight(e.currentTarget.value)}
      />
      <Button
        disabled={!canChange || action.busy}
        onClick={() =>
          action.run(async () => {
            await api.registry.weight(props.instance.instanceId, Number(weight));
            props.onDone();
            return undefined;
          })
        }
      >
        Set
      </Button>
      <ActionResult error={action.error} note={action.note} />
    </span>
  );
}

function Instances(props: { serviceKey: string }) {
  const list = useLoad(
    () => api.registry.instances({ key: props.serviceKey }),
    [props.serviceKey],
    5000,
  );
  const action = useAction();
  const canChange = useCanChange();
  const toggle = (i: InstanceView) =>
    action.run(async () => {
      if (i.status === 'offline') await api.registry.online(i.instanceId);
      else await api.registry.offline(i.instanceId);
      list.reload();
      return `${i.instanceId} ${i.status === 'offline' ? 'back online' : 'taken offline'}`;
    });
  return (
    <Card wide title={`Instances of ${props.serviceKey}`} testId="instances">
      <ErrorBox error={list.error} />
      <ActionResult error={action.error} note={action.note} />
      <Table
        rows={list.data ?? []}
        rowKey={(i) => i.instanceId}
        columns={[
          { title: 'instance', cell: (i) => <code>{i.instanceId}</code> },
          { title: 'address', cell: (i) => `${i.host}:${i.port}` },
          {
            title: 'status',
            cell: (i) => <Badge tone={i.status === 'up' ? 'ok' : 'warn'}>{i.status}</Badge>,
          },
          { title: 'weight', cell: (i) => <WeightCell instance={i} onDone={list.reload} /> },
          { title: 'tags', cell: (i) => i.tags.join(', ') || '–' },
          { title: 'lease until', cell: (i) => when(i.leaseExpiresAt) },
          {
            title: '',
            cell: (i) => (
              <Button
                kind={i.status === 'offline' ? 'primary' : 'danger'}
                disabled={!canChange || action.busy}
                onClick={() => toggle(i)}
              >
                {i.status === 'offline' ? 'Online' : 'Offline'}
              </Button>
            ),
          },
        ]}
      />
    </Card>
  );
}

function ServiceTraffic(props: { service: string }) {
  const [range, setRange] = useState<string>('live');
  const rangeMs = RANGES.find((r) => r.id === range)?.ms;
  const live = useLiveSeries({ by: 'service', service: props.service }, 300, rangeMs);
  const p = live.points;
  return (
    <Card
      wide
      title={`Traffic of ${props.service}`}
      actions={<Tabs tabs={RANGES} active={range} onChange={setRange} />}
    >
      <ErrorBox error={live.error} />
      <TimeChart
        t={p.t}
        leftUnit="per second"
        rightUnit="ms"
        lines={[
          { label: 'calls/s', values: p.calls, color: '#4f9dff' },
          { label: 'errors/s', values: p.errors, color: '#ff5d5d' },
          { label: 'blocked/s', values: p.blocked, color: '#f5a623' },
          { label: 'p99 ms', values: p.p99, color: '#b67cff', right: true },
        ]}
      />
    </Card>
  );
}

function RoutingRules(props: { app: string }) {
  const [app, setApp] = useState(props.app);
  return (
    <Card wide title="Routing rules and weights">
      <Field label="App (config namespace)">
        <input name="app" value={app} onChange={(e) => setApp(e.currentTarget.value)} />
      </Field>
      <div class="two">
        <div>
          <h3>Condition routing (governance/rpc-routes)</h3>
          <ConfigJsonEditor
            item={{ app, group: 'governance', key: 'rpc-routes' }}
            schema={{ $peak: 'rpc-routes' }}
            empty="[]"
          />
        </div>
        <div>
          <h3>Weights by instance (governance/lb-weights)</h3>
          <ConfigJsonEditor
            item={{ app, group: 'governance', key: 'lb-weights' }}
            schema={{ $peak: 'lb-weights' }}
            empty="{}"
          />
        </div>
      </div>
    </Card>
  );
}

export function ServicesPage() {
  const route = useRoute();
  const services = useLoad(() => api.registry.services(), [], 5000);
  const selected = route.query.get('key') ?? undefined;
  const byName = route.query.get('service');
  const rows = services.data ?? [];
  const key = selected ?? rows.find((s) => s.service === byName)?.key ?? rows[0]?.key;
  const current = rows.find((s) => s.key === key);
  return (
    <div class="grid">
      <Card wide title={`Services (${rows.length})`}>
        <ErrorBox error={services.error} />
        <Table
          testId="services"
          rows={rows}
          rowKey={(s) => s.key}
          selected={(s) => s.key === key}
          onRow={(s) => navigate('services', { key: s.key })}
          empty="No service is registered."
          columns={[
            { title: 'service', cell: (s) => s.service },
            { title: 'version', cell: (s) => s.version },
            { title: 'group', cell: (s) => s.group },
            { title: 'up', cell: (s) => s.up, align: 'right' },
            { title: 'offline', cell: (s) => s.offline, align: 'right' },
          ]}
        />
      </Card>
      {current === undefined ? null : (
        <>
          <Instances serviceKey={current.key} />
          <ServiceTraffic service={current.service} />
          <RoutingRules app={current.service.split('.')[0] ?? current.service} />
        </>
      )}
    </div>
  );
}
