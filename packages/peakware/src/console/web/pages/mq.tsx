/**
 * MQ: topics, consumer groups with their backlog per queue, message search by id, key, or
 * topic + tag + time in pages with no cap, a message's trace, a group's dead letters with
 * resend, and offset reset (replay from a time).
 */
import { useState } from 'preact/hooks';
import type { MessageQuery, ReceivedMessage, TopicView } from '../../../admin/mq-admin.js';
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
  Field,
  ms,
  num,
  Table,
  Tabs,
  useAction,
  when,
} from '../ui.js';

function bodyText(b64: string): string {
  try {
    const text = new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    return text.length > 120 ? `${text.slice(0, 117)}...` : text;
  } catch {
    return '(binary)';
  }
}

function Topics() {
  const topics = useLoad(() => api.mq.topics(), [], 5000);
  const stats = useLoad(() => api.mq.stats(), [], 2000);
  const [showInternal, setShowInternal] = useState(false);
  const byTopic = new Map((stats.data?.topics ?? []).map((t) => [t.topic, t]));
  const [open, setOpen] = useState<string | undefined>(undefined);
  const groups = stats.data?.groups ?? [];
  return (
    <>
      <Card
        wide
        title="Topics"
        actions={
          <label class="check">
            <input
              type="checkbox"
              checked={showInternal}
              onChange={(e) => setShowInternal(e.currentTarget.checked)}
            />
            internal (retry, shadow)
          </label>
        }
      >
        <ErrorBox error={topics.error} />
        <Table
          testId="topics"
          rows={(topics.data ?? []).filter((t) => showInternal || !t.internal)}
          rowKey={(t) => t.name}
          empty="No topic yet."
          columns={[
            { title: 'topic', cell: (t) => t.name },
            { title: 'queues', cell: (t) => t.queues, align: 'right' },
            // Where each topic is, once topics are placed on more than one database.
            ...((topics.data ?? []).some((t) => t.database !== undefined && t.database !== 'main')
              ? [{ title: 'database', cell: (t: TopicView) => t.database }]
              : []),
            { title: 'stored', cell: (t) => num(t.messages), align: 'right' },
            { title: 'in/s', cell: (t) => num(byTopic.get(t.name)?.tpsIn), align: 'right' },
            { title: 'out/s', cell: (t) => num(byTopic.get(t.name)?.tpsOut), align: 'right' },
            {
              title: 'p99 delivery',
              cell: (t) => ms(byTopic.get(t.name)?.latencyMs.p99),
              align: 'right',
            },
            {
              title: 'kind',
              cell: (t) => (
                <>
                  {t.ordered ? <Badge>ordered</Badge> : null}{' '}
                  {t.secured ? <Badge>secured</Badge> : null}
                </>
              ),
            },
          ]}
        />
      </Card>
      <Card wide title="Consumer groups">
        <ErrorBox error={stats.error} />
        <Table
          testId="groups"
          rows={groups}
          rowKey={(g) => `${g.group}@${g.topic}`}
          empty="No consumer group has offsets yet."
          onRow={(g) =>
            setOpen(open === `${g.group}@${g.topic}` ? undefined : `${g.group}@${g.topic}`)
          }
          columns={[
            { title: 'group', cell: (g) => g.group },
            { title: 'topic', cell: (g) => g.topic },
            {
              title: 'backlog',
              cell: (g) => <Badge tone={g.backlog > 1000 ? 'warn' : 'ok'}>{num(g.backlog)}</Badge>,
              align: 'right',
            },
            {
              title: 'per queue',
              cell: (g) =>
                open === `${g.group}@${g.topic}`
                  ? g.queues
                      .map((q) => `q${q.queueId}: ${q.backlog} (${q.inflight} in flight)`)
                      .join(' · ')
                  : g.queues.map((q) => q.backlog).join(' · '),
            },
          ]}
        />
      </Card>
    </>
  );
}

function MessageDetail(props: { id: string }) {
  const d = useLoad(() => api.mq.message(props.id), [props.id]);
  const m = d.data?.message;
  return (
    <Card
      wide
      title={`Message ${props.id}`}
      testId="message"
      actions={<Button onClick={() => navigate('mq', { tab: 'search' })}>Back</Button>}
    >
      <ErrorBox error={d.error} />
      {d.data === undefined ? null : (
        <>
          <p>
            state <Badge>{d.data.state}</Badge>
            {m === undefined ? null : (
              <>
                {' '}
                topic {m.topic}, tag {m.tag ?? '–'}, keys {m.keys.join(', ') || '–'}, born{' '}
                {when(m.bornAt)}
              </>
            )}
          </p>
          {m === undefined ? null : <pre class="body">{bodyText(m.body)}</pre>}
          <h3>Trace</h3>
          <Table
            testId="message-trace"
            rows={d.data.trace}
            columns={[
              { title: 'when', cell: (e) => when(e.at) },
              { title: 'event', cell: (e) => e.event },
              { title: 'group', cell: (e) => e.group ?? '–' },
              { title: 'consumer', cell: (e) => e.consumer ?? '–' },
              { title: 'detail', cell: (e) => e.detail ?? '' },
            ]}
          />
          {d.data.deadLetters.length === 0 ? null : (
            <p>
              Dead-lettered in{' '}
              {d.data.deadLetters
                .map((x) => `${x.group} (${x.attempts} tries: ${x.reason ?? ''})`)
                .join(', ')}
            </p>
          )}
        </>
      )}
    </Card>
  );
}

function Search() {
  const [mode, setMode] = useState('key');
  const [form, setForm] = useState({ id: '', key: '', topic: '', tag: '', from: '', to: '' });
  const [query, setQuery] = useState<MessageQuery | undefined>(undefined);
  const [messages, setMessages] = useState<ReceivedMessage[]>([]);
  const [next, setNext] = useState<string | undefined>(undefined);
  const action = useAction();
  const set = (k: keyof typeof form) => (e: { currentTarget: { value: string } }) =>
    setForm({ ...form, [k]: e.currentTarget.value });
  const page = (q: MessageQuery, cursor: string | undefined, keep: ReceivedMessage[]) =>
    action.run(async () => {
      const p = await api.mq.queryPage({
        ...q,
        limit: 100,
        ...(cursor === undefined ? {} : { cursor }),
      });
      setMessages([...keep, ...p.messages]);
      setNext(p.next);
      return undefined;
    });
  const submit = (e: Event) => {
    e.preventDefault();
    if (mode === 'id') {
      navigate('mq', { tab: 'search', message: form.id.trim() });
      return;
    }
    const q: MessageQuery =
      mode === 'key'
        ? { key: form.key, ...(form.topic === '' ? {} : { topic: form.topic }) }
        : {
            topic: form.topic,
            ...(form.tag === '' ? {} : { tag: form.tag }),
            ...(form.from === '' ? {} : { from: new Date(form.from) }),
            ...(form.to === '' ? {} : { to: new Date(form.to) }),
          };
    setQuery(q);
    void page(q, undefined, []);
  };
  return (
    <>
      <Card wide>
        <Tabs
          tabs={[
            { id: 'key', title: 'By key' },
            { id: 'time', title: 'By topic, tag and time' },
            { id: 'id', title: 'By id' },
          ]}
          active={mode}
          onChange={setMode}
        />
        <form class="row" onSubmit={submit} data-testid="message-search">
          {mode === 'id' ? (
            <Field label="Message id">
              <input name="id" value={form.id} onInput={set('id')} />
            </Field>
          ) : null}
          {mode === 'key' ? (
            <Field label="Key">
              <input name="key" value={form.key} onInput={set('key')} />
            </Field>
          ) : null}
          {mode !== 'id' ? (
            <Field label={mode === 'key' ? 'Topic (optional)' : 'Topic'}>
              <input name="topic" value={form.topic} onInput={set('topic')} />
            </Field>
          ) : null}
          {mode === 'time' ? (
            <>
              <Field label="Tag">
                <input name="tag" value={form.tag} onInput={set('tag')} />
              </Field>
              <Field label="From">
                <input type="datetime-local" name="from" value={form.from} onInput={set('from')} />
              </Field>
              <Field label="To">
                <input type="datetime-local" name="to" value={form.to} onInput={set('to')} />
              </Field>
            </>
          ) : null}
          <Button kind="primary" submit>
            Search
          </Button>
        </form>
      </Card>
      {query === undefined ? null : (
        <Card
          wide
          title={`Messages: ${messages.length} shown${next === undefined ? '' : ', more to load'}`}
        >
          <ActionResult error={action.error} note={action.note} />
          <Table
            testId="messages"
            rows={messages}
            rowKey={(m) => `${m.id}/${m.topic}/${m.queueId}/${m.queueOffset}`}
            empty="No message matches."
            onRow={(m) => navigate('mq', { tab: 'search', message: m.id })}
            columns={[
              { title: 'id', cell: (m) => <code>{m.id}</code> },
              { title: 'topic', cell: (m) => m.topic },
              { title: 'tag', cell: (m) => m.tag ?? '–' },
              { title: 'keys', cell: (m) => m.keys.join(', ') },
              { title: 'stored', cell: (m) => when(m.storedAt) },
              { title: 'body', cell: (m) => <code class="clip">{bodyText(m.body)}</code> },
            ]}
          />
          {next === undefined ? null : (
            <Button disabled={action.busy} onClick={() => page(query, next, messages)}>
              Next 100
            </Button>
          )}
        </Card>
      )}
    </>
  );
}

function DeadLetters() {
  const stats = useLoad(() => api.mq.stats(), []);
  const route = useRoute();
  const groups = [...new Set((stats.data?.groups ?? []).map((g) => g.group))];
  const group = route.query.get('group') ?? groups[0];
  const dlq = useLoad(
    async () => (group === undefined ? [] : api.mq.deadLetters(group, { limit: 200 })),
    [group],
  );
  const action = useAction();
  const canChange = useCanChange();
  const resend = (ids: 'all' | string[]) =>
    action.run(async () => {
      if (group === undefined) return undefined;
      const r = await api.mq.resendDeadLetters(group, ids);
      dlq.reload();
      return `resent ${r.resent.length} message(s) to ${group}`;
    });
  return (
    <Card
      wide
      title={`Dead letters of ${group ?? '–'}`}
      testId="dlq"
      actions={
        <>
          <select
            aria-label="group"
            value={group}
            onChange={(e) => navigate('mq', { tab: 'dlq', group: e.currentTarget.value })}
          >
            {groups.map((g) => (
              <option key={g} value={g}>
                {g}
              </option>
            ))}
          </select>
          <Button
            disabled={!canChange || action.busy || (dlq.data ?? []).length === 0}
            onClick={() => resend('all')}
          >
            Resend all
          </Button>
        </>
      }
    >
      <ErrorBox error={dlq.error} />
      <ActionResult error={action.error} note={action.note} />
      <Table
        rows={dlq.data ?? []}
        rowKey={(m) => m.id}
        empty="No dead letter."
        columns={[
          { title: 'id', cell: (m) => <code>{m.id}</code> },
          { title: 'topic', cell: (m) => m.topic },
          { title: 'tag', cell: (m) => m.tag ?? '–' },
          { title: 'tries', cell: (m) => m.reconsumeTimes, align: 'right' },
          { title: 'reason', cell: (m) => m.reason ?? '' },
          { title: 'dead at', cell: (m) => when(m.deadAt) },
          {
            title: '',
            cell: (m) => (
              <Button disabled={!canChange || action.busy} onClick={() => resend([m.id])}>
                Resend
              </Button>
            ),
          },
        ]}
      />
    </Card>
  );
}

function OffsetReset() {
  const [form, setForm] = useState({ group: '', topic: '', at: '' });
  const action = useAction();
  const canChange = useCanChange();
  const set = (k: keyof typeof form) => (e: { currentTarget: { value: string } }) =>
    setForm({ ...form, [k]: e.currentTarget.value });
  return (
    <Card wide title="Offset reset (replay from a time)">
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            const queues = await api.mq.resetOffset(form.group, form.topic, new Date(form.at));
            return `${form.group} on ${form.topic} restarts at ${queues.map((q) => `q${q.queueId}@${q.offset}`).join(', ')}`;
          });
        }}
      >
        <Field label="Group">
          <input name="group" value={form.group} onInput={set('group')} />
        </Field>
        <Field label="Topic">
          <input name="topic" value={form.topic} onInput={set('topic')} />
        </Field>
        <Field label="From">
          <input type="datetime-local" name="at" value={form.at} onInput={set('at')} />
        </Field>
        <Button kind="danger" submit disabled={!canChange || action.busy}>
          Reset offsets
        </Button>
      </form>
      <ActionResult error={action.error} note={action.note} />
    </Card>
  );
}

export function MqPage() {
  const route = useRoute();
  const tab = route.query.get('tab') ?? 'topics';
  const message = route.query.get('message');
  return (
    <div class="grid">
      <div class="wide">
        <Tabs
          tabs={[
            { id: 'topics', title: 'Topics and groups' },
            { id: 'search', title: 'Messages' },
            { id: 'dlq', title: 'Dead letters' },
            { id: 'offsets', title: 'Offset reset' },
          ]}
          active={tab}
          onChange={(id) => navigate('mq', { tab: id })}
        />
      </div>
      {tab === 'topics' ? <Topics /> : null}
      {tab === 'search' && message !== null ? <MessageDetail id={message} /> : null}
      {tab === 'search' && message === null ? <Search /> : null}
      {tab === 'dlq' ? <DeadLetters /> : null}
      {tab === 'offsets' ? <OffsetReset /> : null}
    </div>
  );
}
