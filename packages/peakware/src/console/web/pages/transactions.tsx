/**
 * Transactions: the coordinator's global transactions (sagas, TCCs, two-phase messages),
 * newest first, filtered by status and kind; one of them with its steps' timeline, what it
 * was submitted with and its trace; force-stop a running saga or TCC (its compensations or
 * cancels run on the next recovery round) and resume an unfinished or parked one now. The
 * same calls as `peak txn ls|show|stop|retry`.
 */
import type { TxnStatus, TxnSummary, TxnView } from '../../../admin/txn-admin.js';
import { api } from '../api.js';
import { type Loaded, useLoad } from '../hooks.js';
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
  PageLink,
  Table,
  useAction,
  when,
} from '../ui.js';

/** The statuses a transaction is still moving in (recovery resumes them). */
const ACTIVE: readonly TxnStatus[] = ['prepared', 'running', 'committing', 'aborting'];

/** Rows the list shows (the newest). */
const LIST_LIMIT = 200;

const STATUS_FILTERS = [
  ['', 'every status'],
  ['active', 'unfinished'],
  ['running', 'running'],
  ['committing', 'committing'],
  ['aborting', 'aborting'],
  ['prepared', 'prepared'],
  ['succeeded', 'succeeded'],
  ['failed', 'failed'],
] as const;

const KIND_FILTERS = [
  ['', 'every kind'],
  ['saga', 'saga'],
  ['tcc', 'TCC'],
  ['msg', 'two-phase message'],
] as const;

function StatusBadge(props: { t: Pick<TxnSummary, 'status' | 'parked'> }) {
  const { status, parked } = props.t;
  const tone = status === 'succeeded' ? 'ok' : status === 'failed' ? 'bad' : 'warn';
  return (
    <>
      <Badge tone={tone}>{status}</Badge>
      {parked ? (
        <>
          {' '}
          <Badge tone="bad">parked</Badge>
        </>
      ) : null}
    </>
  );
}

/** How long it ran (to its end, or until now). */
function took(t: Pick<TxnSummary, 'createdAt' | 'finishedAt'>): string {
  const end = t.finishedAt === undefined ? Date.now() : Date.parse(t.finishedAt);
  return ms(end - Date.parse(t.createdAt));
}

const canStop = (t: TxnSummary) =>
  (t.kind === 'saga' || t.kind === 'tcc') && (t.status === 'running' || t.status === 'aborting');
const canRetry = (t: TxnSummary) => ACTIVE.includes(t.status) || t.parked;

function Detail(props: { gid: string; onChanged: () => void }) {
  const txn = useLoad(() => api.txn.show(props.gid), [props.gid], 2000);
  const route = useRoute();
  const action = useAction();
  const canChange = useCanChange();
  const t: TxnView | undefined = txn.data;
  const act = (what: 'stop' | 'retry') =>
    action.run(async () => {
      const r = what === 'stop' ? await api.txn.stop(props.gid) : await api.txn.retry(props.gid);
      txn.reload();
      props.onChanged();
      return what === 'stop'
        ? `${props.gid} is ${r.status}: its ${r.kind === 'tcc' ? 'cancels' : 'compensations'} run on the next recovery round`
        : `${props.gid} is resumed on the next recovery round`;
    });
  return (
    <Card
      wide
      title={`Transaction ${props.gid}`}
      testId="txn-detail"
      actions={
        <>
          <Button
            kind="danger"
            disabled={!canChange || action.busy || t === undefined || !canStop(t)}
            onClick={() => act('stop')}
          >
            Stop
          </Button>
          <Button
            disabled={!canChange || action.busy || t === undefined || !canRetry(t)}
            onClick={() => act('retry')}
          >
            Retry now
          </Button>
          <Button
            onClick={() =>
              navigate('transactions', {
                status: route.query.get('status') ?? undefined,
                kind: route.query.get('kind') ?? undefined,
              })
            }
          >
            Back to the list
          </Button>
        </>
      }
    >
      <ErrorBox error={txn.error} />
      <ActionResult error={action.error} note={action.note} />
      {t === undefined ? null : (
        <>
          <dl class="facts" data-testid="txn-facts">
            <dt>status</dt>
            <dd data-testid="txn-status">
              <StatusBadge t={t} />
            </dd>
            <dt>kind</dt>
            <dd>{t.kind}</dd>
            <dt>app</dt>
            <dd>{t.app ?? 'an operator'}</dd>
            <dt>reason</dt>
            <dd data-testid="txn-reason">{t.reason ?? '–'}</dd>
            <dt>driven by</dt>
            <dd>
              {t.owner ?? '–'}
              {t.leaseUntil === undefined ? '' : `, lease until ${when(t.leaseUntil)}`}
            </dd>
            <dt>recoveries</dt>
            <dd>{num(t.recoveries, 0)}</dd>
            <dt>created</dt>
            <dd>{when(t.createdAt)}</dd>
            <dt>deadline</dt>
            <dd>{when(t.deadline)}</dd>
            <dt>finished</dt>
            <dd>{t.finishedAt === undefined ? '–' : `${when(t.finishedAt)} (${took(t)})`}</dd>
            <dt>trace</dt>
            <dd>
              {t.traceId === undefined ? (
                '–'
              ) : (
                <PageLink page="traces" query={{ trace: t.traceId }}>
                  {t.traceId}
                </PageLink>
              )}
            </dd>
          </dl>
          <h3>Timeline</h3>
          <Table
            testId="txn-timeline"
            rows={[...t.branches].sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt))}
            rowKey={(b) => `${b.branch}/${b.op}`}
            empty="No step has run yet."
            columns={[
              { title: 'step', cell: (b) => b.branch },
              { title: 'operation', cell: (b) => b.op },
              {
                title: 'status',
                cell: (b) => (
                  <Badge
                    tone={b.status === 'succeeded' ? 'ok' : b.status === 'failed' ? 'bad' : 'warn'}
                  >
                    {b.status}
                  </Badge>
                ),
              },
              { title: 'attempts', cell: (b) => num(b.attempts, 0), align: 'right' },
              { title: 'started', cell: (b) => when(b.startedAt) },
              {
                title: 'took',
                cell: (b) =>
                  b.finishedAt === undefined
                    ? 'running'
                    : ms(Date.parse(b.finishedAt) - Date.parse(b.startedAt)),
                align: 'right',
              },
              { title: 'error', cell: (b) => b.error ?? '' },
            ]}
          />
          <h3>Submitted with</h3>
          <pre class="body" data-testid="txn-spec">
            {JSON.stringify(t.spec, null, 2)}
          </pre>
        </>
      )}
    </Card>
  );
}

function List(props: { status: string; kind: string; gid?: string; list: Loaded<TxnSummary[]> }) {
  const { list } = props;
  const rows = list.data ?? [];
  const filter = (next: { status?: string; kind?: string }) =>
    navigate('transactions', {
      status: next.status ?? props.status,
      kind: next.kind ?? props.kind,
    });
  return (
    <Card
      wide
      title={`Global transactions (${rows.length}${rows.length === LIST_LIMIT ? ', the newest' : ''})`}
      testId="txn-list"
      actions={
        <>
          <select
            aria-label="status"
            name="status"
            value={props.status}
            onChange={(e) => filter({ status: e.currentTarget.value })}
          >
            {STATUS_FILTERS.map(([v, label]) => (
              <option key={v} value={v}>
                {label}
              </option>
            ))}
          </select>
          <select
            aria-label="kind"
            name="kind"
            value={props.kind}
            onChange={(e) => filter({ kind: e.currentTarget.value })}
          >
            {KIND_FILTERS.map(([v, label]) => (
              <option key={v} value={v}>
                {label}
              </option>
            ))}
          </select>
        </>
      }
    >
      <ErrorBox error={list.error} />
      <Table
        testId="txns"
        rows={rows}
        rowKey={(t) => t.gid}
        empty="No global transaction matches. Services submit them with TxnClient (peakware/txn)."
        onRow={(t) =>
          navigate('transactions', { status: props.status, kind: props.kind, gid: t.gid })
        }
        selected={(t) => t.gid === props.gid}
        columns={[
          { title: 'global id', cell: (t) => <code>{t.gid}</code> },
          { title: 'kind', cell: (t) => t.kind },
          { title: 'status', cell: (t) => <StatusBadge t={t} /> },
          { title: 'app', cell: (t) => t.app ?? 'operator' },
          { title: 'created', cell: (t) => when(t.createdAt) },
          { title: 'took', cell: (t) => took(t), align: 'right' },
          { title: 'recoveries', cell: (t) => num(t.recoveries, 0), align: 'right' },
          { title: 'reason', cell: (t) => t.reason ?? '' },
        ]}
      />
    </Card>
  );
}

export function TransactionsPage() {
  const route = useRoute();
  const status = route.query.get('status') ?? '';
  const kind = route.query.get('kind') ?? '';
  const gid = route.query.get('gid') ?? undefined;
  const list = useLoad(
    () =>
      api.txn.list({
        limit: LIST_LIMIT,
        ...(status === '' ? {} : { status: status as TxnStatus | 'active' }),
        ...(kind === '' ? {} : { kind: kind as TxnSummary['kind'] }),
      }),
    [status, kind],
    3000,
  );
  return (
    <div class="grid">
      {gid === undefined ? null : <Detail gid={gid} onChanged={list.reload} />}
      <List status={status} kind={kind} list={list} {...(gid === undefined ? {} : { gid })} />
    </div>
  );
}
