/**
 * Gateway apps: who may call which API through `peak gateway`. Subscriptions with their
 * quota and this UTC day's and month's use (approve with a quota, reject, revoke, set a
 * quota); the apps and their keys (ids, expiry, revoked; never a secret); the routes and
 * where each goes. The same calls as `peak gateway subscriptions|apps|keys|routes|quota`.
 */
import { useEffect, useState } from 'preact/hooks';
import type {
  GatewaySubscription,
  QuotaUsageRow,
  SubscriptionStatus,
} from '../../../admin/gateway-admin.js';
import { routeTargetText } from '../../../gateway/route-words.js';
import { api } from '../api.js';
import { useLoad } from '../hooks.js';
import { navigate, useRoute } from '../router.js';
import { useCanChange } from '../session.js';
import {
  ActionResult,
  Badge,
  Button,
  Card,
  ErrorBox,
  num,
  Table,
  Tabs,
  useAction,
  when,
} from '../ui.js';

const TONE: Record<SubscriptionStatus, string> = {
  pending: 'warn',
  approved: 'ok',
  rejected: 'bad',
  revoked: 'bad',
};

/** The routes shown at most (a gateway may hold 10 000): the filter narrows them. */
const ROUTES_SHOWN = 500;

/**
 * `used / limit` of one period, or the use alone when that period has no limit (gateways
 * meter a subscription without any quota too, reporting its calls every few seconds).
 */
function usage(
  s: GatewaySubscription,
  used: number | undefined,
  limit: number | null | undefined,
): string {
  const u = num(used ?? 0, 0);
  if (s.quota.perDay === undefined && s.quota.perMonth === undefined) return `${u} (no quota)`;
  return limit === null || limit === undefined ? `${u} (no limit)` : `${u} / ${num(limit, 0)}`;
}

/** A quota typed in a field: a whole number, or undefined when empty. */
function quotaOf(text: string): number | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  const n = Number(t);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`quota '${text}' is not a whole number of calls (0 or more)`);
  return n;
}

function Subscriptions(props: { status: string }) {
  const subs = useLoad(
    () =>
      api.gateway.subscriptions(
        props.status === '' ? {} : { status: props.status as SubscriptionStatus },
      ),
    [props.status],
    5000,
  );
  const use = useLoad(() => api.gateway.quota(), [], 5000);
  const [perDay, setPerDay] = useState('');
  const [perMonth, setPerMonth] = useState('');
  const action = useAction();
  const canChange = useCanChange();
  const used = new Map<string, QuotaUsageRow>(
    (use.data ?? []).map((u) => [`${u.app}\n${u.api}`, u]),
  );
  const quota = () => {
    const day = quotaOf(perDay);
    const month = quotaOf(perMonth);
    return {
      ...(day === undefined ? {} : { perDay: day }),
      ...(month === undefined ? {} : { perMonth: month }),
    };
  };
  const act = (s: GatewaySubscription, what: 'approve' | 'reject' | 'revoke' | 'quota') =>
    action.run(async () => {
      const who = `${s.app} → ${s.api}`;
      let note: string;
      if (what === 'approve') {
        const q = quota();
        await api.gateway.approve(s.app, s.api, Object.keys(q).length === 0 ? {} : { quota: q });
        note = `${who} approved`;
      } else if (what === 'quota') {
        await api.gateway.setQuota(s.app, s.api, quota());
        note = `${who}: quota set`;
      } else if (what === 'reject') {
        await api.gateway.reject(s.app, s.api, 'rejected in the console');
        note = `${who} rejected`;
      } else {
        await api.gateway.revoke(s.app, s.api, 'revoked in the console');
        note = `${who} revoked: its calls are refused from now on`;
      }
      subs.reload();
      use.reload();
      return note;
    });
  const busy = !canChange || action.busy;
  return (
    <Card
      wide
      title="Subscriptions"
      testId="gw-subscriptions"
      actions={
        <>
          <select
            aria-label="status"
            name="status"
            value={props.status}
            onChange={(e) => navigate('gateway', { status: e.currentTarget.value })}
          >
            <option value="">every status</option>
            <option value="pending">pending</option>
            <option value="approved">approved</option>
            <option value="rejected">rejected</option>
            <option value="revoked">revoked</option>
          </select>
          <label class="inline">
            quota per day{' '}
            <input
              class="small-input"
              name="perDay"
              aria-label="quota per day"
              value={perDay}
              onInput={(e) => setPerDay(e.currentTarget.value)}
            />
          </label>
          <label class="inline">
            per month{' '}
            <input
              class="small-input"
              name="perMonth"
              aria-label="quota per month"
              value={perMonth}
              onInput={(e) => setPerMonth(e.currentTarget.value)}
            />
          </label>
        </>
      }
    >
      <ErrorBox error={subs.error ?? use.error} />
      <ActionResult error={action.error} note={action.note} />
      <Table
        testId="gw-subs"
        rows={subs.data ?? []}
        rowKey={(s) => `${s.app}/${s.api}`}
        empty="No subscription. An app asks for an API with `peak gateway subscriptions request`."
        columns={[
          { title: 'app', cell: (s) => s.app },
          { title: 'API', cell: (s) => s.api },
          { title: 'status', cell: (s) => <Badge tone={TONE[s.status]}>{s.status}</Badge> },
          {
            title: 'today (UTC)',
            cell: (s) => usage(s, used.get(`${s.app}\n${s.api}`)?.usedToday, s.quota.perDay),
            align: 'right',
          },
          {
            title: 'this month',
            cell: (s) => usage(s, used.get(`${s.app}\n${s.api}`)?.usedThisMonth, s.quota.perMonth),
            align: 'right',
          },
          { title: 'asked', cell: (s) => when(s.requestedAt) },
          { title: 'decided', cell: (s) => (s.decidedAt === null ? '–' : when(s.decidedAt)) },
          { title: 'note', cell: (s) => s.note ?? '' },
          {
            title: '',
            cell: (s) => (
              <span class="inline">
                {s.status === 'approved' ? (
                  <>
                    <Button disabled={busy} onClick={() => act(s, 'quota')}>
                      Set quota
                    </Button>
                    <Button kind="danger" disabled={busy} onClick={() => act(s, 'revoke')}>
                      Revoke
                    </Button>
                  </>
                ) : (
                  <>
                    <Button kind="primary" disabled={busy} onClick={() => act(s, 'approve')}>
                      Approve
                    </Button>
                    {s.status === 'pending' ? (
                      <Button disabled={busy} onClick={() => act(s, 'reject')}>
                        Reject
                      </Button>
                    ) : null}
                  </>
                )}
              </span>
            ),
          },
        ]}
      />
      <p class="muted small">
        Approve takes the quota fields above when one is filled (else the subscription keeps its
        quota); Set quota sets exactly them (an empty field: no limit for that period). Quotas count
        calls per UTC day and month, exactly across gateway processes; a subscription without any
        quota is metered too (its use reported by each gateway every 5 s).
      </p>
    </Card>
  );
}

function Apps(props: { app: string | undefined }) {
  const apps = useLoad(() => api.gateway.apps(), [], 5000);
  const keys = useLoad(
    async () => (props.app === undefined ? [] : api.gateway.keys(props.app)),
    [props.app],
    5000,
  );
  return (
    <>
      <Card wide title="Apps" testId="gw-apps">
        <ErrorBox error={apps.error} />
        <Table
          testId="gw-app-list"
          rows={apps.data ?? []}
          rowKey={(a) => a.name}
          empty="No app. Add one with `peak gateway apps put <name>`."
          onRow={(a) => navigate('gateway', { tab: 'apps', app: a.name })}
          selected={(a) => a.name === props.app}
          columns={[
            { title: 'app', cell: (a) => a.name },
            { title: 'description', cell: (a) => a.description ?? '' },
            {
              title: 'state',
              cell: (a) =>
                a.disabled ? <Badge tone="bad">disabled</Badge> : <Badge tone="ok">enabled</Badge>,
            },
            { title: 'allowed from', cell: (a) => a.ipAllow?.join(', ') ?? 'anywhere' },
            { title: 'denied from', cell: (a) => a.ipDeny?.join(', ') ?? '–' },
          ]}
        />
      </Card>
      {props.app === undefined ? null : (
        <Card wide title={`Keys of ${props.app}`} testId="gw-keys">
          <ErrorBox error={keys.error} />
          <Table
            rows={keys.data ?? []}
            rowKey={(k) => k.id}
            empty="No key. Issue one with `peak gateway keys create <app>` (its secret is shown once)."
            columns={[
              { title: 'key id', cell: (k) => <code>{k.id}</code> },
              { title: 'issued', cell: (k) => when(k.createdAt) },
              {
                title: 'expires',
                cell: (k) => (k.expiresAt === null ? 'never' : when(k.expiresAt)),
              },
              {
                title: 'state',
                cell: (k) =>
                  k.revoked ? (
                    <Badge tone="bad">revoked</Badge>
                  ) : k.expiresAt !== null && k.expiresAt < Date.now() ? (
                    <Badge tone="bad">expired</Badge>
                  ) : (
                    <Badge tone="ok">valid</Badge>
                  ),
              },
            ]}
          />
        </Card>
      )}
    </>
  );
}

/** How long typing may pause before the filter asks the control plane again, ms. */
const FILTER_PAUSE_MS = 250;

function Routes() {
  const [filter, setFilter] = useState('');
  const [asked, setAsked] = useState('');
  // The control plane filters (a gateway may hold 10 000 routes): only the page shown
  // travels, every 10 s, and again once typing pauses.
  useEffect(() => {
    const t = setTimeout(() => setAsked(filter.trim()), FILTER_PAUSE_MS);
    return () => clearTimeout(t);
  }, [filter]);
  const routes = useLoad(
    () => api.gateway.routePage({ ...(asked === '' ? {} : { match: asked }), limit: ROUTES_SHOWN }),
    [asked],
    10_000,
  );
  const shown = routes.data?.routes ?? [];
  const matching = routes.data?.matching ?? 0;
  return (
    <Card
      wide
      title={`Routes (${matching}${matching > shown.length ? `, the first ${shown.length} shown` : ''})`}
      testId="gw-routes"
      actions={
        <input
          name="filter"
          aria-label="filter routes"
          placeholder="filter: name, API, path, target"
          value={filter}
          onInput={(e) => setFilter(e.currentTarget.value)}
        />
      }
    >
      <ErrorBox error={routes.error} />
      <Table
        testId="gw-route-list"
        rows={shown}
        rowKey={(r) => r.name}
        empty={
          asked === ''
            ? 'No route. Add them with `peak gateway routes put` or admin.gateway.putRoute.'
            : `No route matches '${asked}'.`
        }
        columns={[
          { title: 'route', cell: (r) => r.name },
          { title: 'API', cell: (r) => r.api ?? r.name },
          { title: 'method', cell: (r) => r.method },
          { title: 'host', cell: (r) => r.host ?? 'any' },
          { title: 'path', cell: (r) => <code>{r.path}</code> },
          { title: 'goes to', cell: (r) => routeTargetText(r) },
          { title: 'auth', cell: (r) => r.auth ?? 'signature' },
          { title: 'timeout', cell: (r) => `${num(r.timeoutMs ?? 3000, 0)} ms`, align: 'right' },
        ]}
      />
    </Card>
  );
}

export function GatewayPage() {
  const route = useRoute();
  const tab = route.query.get('tab') ?? 'subscriptions';
  return (
    <div class="grid">
      <div class="wide">
        <Tabs
          tabs={[
            { id: 'subscriptions', title: 'Subscriptions' },
            { id: 'apps', title: 'Apps and keys' },
            { id: 'routes', title: 'Routes' },
          ]}
          active={tab}
          onChange={(id) => navigate('gateway', { tab: id })}
        />
      </div>
      {tab === 'apps' ? (
        <Apps app={route.query.get('app') ?? undefined} />
      ) : tab === 'routes' ? (
        <Routes />
      ) : (
        <Subscriptions status={route.query.get('status') ?? ''} />
      )}
    </div>
  );
}
