/**
 * Config: apps and their items; an item's value, versions and the diff between any two;
 * publish, gray release (to tags or instances) with promote and abort, rollback to an
 * earlier version; and the audit of who changed what, when and from where.
 */
import { useEffect, useState } from 'preact/hooks';
import type { ConfigItem, ItemRef } from '../../../admin/config-admin.js';
import { api } from '../api.js';
import { problemsOf } from '../config-editor.js';
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
  Table,
  Tabs,
  useAction,
  when,
} from '../ui.js';

function Problems(props: { error: unknown }) {
  const problems = problemsOf(props.error);
  if (problems.length === 0) return <ActionResult error={props.error} note={undefined} />;
  return (
    <ul class="problems" data-testid="problems">
      {problems.map((p) => (
        <li key={p.path + p.reason}>
          <code>{p.path}</code> {p.reason}
        </li>
      ))}
    </ul>
  );
}

function Diff(props: { item: ItemRef; latest: number }) {
  const [from, setFrom] = useState(String(Math.max(props.latest - 1, 1)));
  const [to, setTo] = useState(String(props.latest));
  const diff = useLoad(
    () => api.config.diff(props.item, { from: Number(from), to: Number(to) }),
    [props.item.app, props.item.group, props.item.key, from, to],
  );
  return (
    <div data-testid="diff">
      <div class="row">
        <Field label="From version">
          <input
            class="small-input"
            value={from}
            onChange={(e) => setFrom(e.currentTarget.value)}
          />
        </Field>
        <Field label="To version">
          <input class="small-input" value={to} onChange={(e) => setTo(e.currentTarget.value)} />
        </Field>
      </div>
      <ErrorBox error={diff.error} />
      <DiffLines lines={diff.data?.diff ?? []} />
    </div>
  );
}

function ItemDetail(props: { item: ConfigItem; onChange: () => void }) {
  const ref: ItemRef = { app: props.item.app, group: props.item.group, key: props.item.key };
  const [tab, setTab] = useState('publish');
  const [value, setValue] = useState(props.item.value);
  const [grayValue, setGrayValue] = useState(props.item.gray?.value ?? props.item.value);
  const [tags, setTags] = useState('');
  const [instances, setInstances] = useState('');
  const history = useLoad(() => api.config.history(ref, { limit: 50 }), [props.item.version]);
  const audit = useLoad(
    () => api.config.audit(ref, { limit: 50 }),
    [props.item.version, props.item.gray],
  );
  const action = useAction();
  const canChange = useCanChange();
  const author = useAuthor();
  useEffect(() => setValue(props.item.value), [props.item.value]);
  const act = (what: () => Promise<string>) =>
    action.run(async () => {
      const note = await what();
      props.onChange();
      history.reload();
      audit.reload();
      return note;
    });
  const list = (s: string) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '');
  return (
    <Card wide title={`${ref.app}/${ref.group}/${ref.key}`} testId="item">
      <p class="muted">
        version {props.item.version}, {props.item.format}, by {props.item.updatedBy} at{' '}
        {when(props.item.updatedAt)}
        {props.item.schema === null ? '' : `; schema ${JSON.stringify(props.item.schema)}`}
        {props.item.gray === null ? null : (
          <>
            {' '}
            <Badge tone="warn">
              gray to {[...props.item.gray.tags, ...props.item.gray.instanceIds].join(', ')}
            </Badge>
          </>
        )}
      </p>
      <Tabs
        tabs={[
          { id: 'publish', title: 'Publish' },
          { id: 'gray', title: 'Gray release' },
          { id: 'history', title: 'Versions' },
          { id: 'diff', title: 'Diff' },
          { id: 'audit', title: 'Audit' },
        ]}
        active={tab}
        onChange={setTab}
      />
      {tab === 'publish' ? (
        <div class="editor">
          <textarea
            rows={10}
            spellcheck={false}
            aria-label="value"
            value={value}
            onInput={(e) => setValue(e.currentTarget.value)}
          />
          <Button
            kind="primary"
            disabled={!canChange || action.busy}
            onClick={() =>
              act(async () => {
                const r = await api.config.publish(ref, {
                  value,
                  format: props.item.format,
                  expectedVersion: props.item.version,
                  author,
                  comment: 'from the console',
                });
                return `published version ${r.version}`;
              })
            }
          >
            Publish
          </Button>
        </div>
      ) : null}
      {tab === 'gray' ? (
        <div class="editor">
          <textarea
            rows={8}
            spellcheck={false}
            aria-label="gray value"
            value={grayValue}
            onInput={(e) => setGrayValue(e.currentTarget.value)}
          />
          <div class="row">
            <Field label="To instances tagged (comma separated)">
              <input name="tags" value={tags} onInput={(e) => setTags(e.currentTarget.value)} />
            </Field>
            <Field label="To instance ids (comma separated)">
              <input
                name="instances"
                value={instances}
                onInput={(e) => setInstances(e.currentTarget.value)}
              />
            </Field>
          </div>
          <div class="row">
            <Button
              kind="primary"
              disabled={!canChange || action.busy}
              onClick={() =>
                act(async () => {
                  await api.config.gray(ref, {
                    value: grayValue,
                    format: props.item.format,
                    tags: list(tags),
                    instanceIds: list(instances),
                    author,
                  });
                  return 'gray release started';
                })
              }
            >
              Start gray
            </Button>
            <Button
              disabled={!canChange || action.busy || props.item.gray === null}
              onClick={() =>
                act(
                  async () =>
                    `promoted to version ${(await api.config.promote(ref, { author })).version}`,
                )
              }
            >
              Promote
            </Button>
            <Button
              kind="danger"
              disabled={!canChange || action.busy || props.item.gray === null}
              onClick={() =>
                act(async () => {
                  await api.config.abortGray(ref, { author });
                  return 'gray release aborted';
                })
              }
            >
              Abort
            </Button>
          </div>
        </div>
      ) : null}
      {tab === 'history' ? (
        <Table
          testId="versions"
          rows={history.data ?? []}
          rowKey={(v) => String(v.version)}
          columns={[
            { title: 'version', cell: (v) => v.version, align: 'right' },
            { title: 'author', cell: (v) => v.author },
            { title: 'comment', cell: (v) => v.comment },
            { title: 'when', cell: (v) => when(v.createdAt) },
            { title: 'value', cell: (v) => <code class="clip">{v.value}</code> },
            {
              title: '',
              cell: (v) =>
                v.version === props.item.version ? (
                  <Badge tone="ok">current</Badge>
                ) : (
                  <Button
                    disabled={!canChange || action.busy}
                    onClick={() =>
                      act(async () => {
                        const r = await api.config.rollback(ref, {
                          toVersion: v.version,
                          expectedVersion: props.item.version,
                          author,
                          comment: `rollback to ${v.version} from the console`,
                        });
                        return `rolled back: version ${r.version} has version ${v.version}'s value`;
                      })
                    }
                  >
                    Roll back to this
                  </Button>
                ),
            },
          ]}
        />
      ) : null}
      {tab === 'diff' ? <Diff item={ref} latest={props.item.version} /> : null}
      {tab === 'audit' ? (
        <Table
          testId="config-audit"
          rows={audit.data ?? []}
          rowKey={(a) => String(a.id)}
          columns={[
            { title: 'when', cell: (a) => when(a.at) },
            { title: 'who', cell: (a) => a.actor },
            { title: 'from', cell: (a) => a.source },
            { title: 'action', cell: (a) => a.action },
            { title: 'version', cell: (a) => a.version ?? '–', align: 'right' },
          ]}
        />
      ) : null}
      <Problems error={action.error} />
      <ActionResult error={undefined} note={action.note} />
    </Card>
  );
}

export function ConfigPage() {
  const route = useRoute();
  const apps = useLoad(() => api.config.apps(), []);
  const app = route.query.get('app') ?? apps.data?.[0]?.app;
  const items = useLoad(async () => (app === undefined ? [] : api.config.items(app)), [app]);
  const key = route.query.get('item');
  const item = (items.data ?? []).find((i) => `${i.group}/${i.key}` === key) ?? items.data?.[0];
  return (
    <div class="grid">
      <Card title="Apps">
        <ErrorBox error={apps.error} />
        <Table
          testId="apps"
          rows={apps.data ?? []}
          rowKey={(a) => a.app}
          selected={(a) => a.app === app}
          onRow={(a) => navigate('config', { app: a.app })}
          empty="No config item is published."
          columns={[
            { title: 'app', cell: (a) => a.app },
            { title: 'items', cell: (a) => a.items, align: 'right' },
          ]}
        />
      </Card>
      <Card title={`Items of ${app ?? '–'}`}>
        <ErrorBox error={items.error} />
        <Table
          testId="items"
          rows={items.data ?? []}
          rowKey={(i) => `${i.group}/${i.key}`}
          selected={(i) => i === item}
          onRow={(i) => navigate('config', { app, item: `${i.group}/${i.key}` })}
          columns={[
            { title: 'group', cell: (i) => i.group },
            { title: 'key', cell: (i) => i.key },
            { title: 'version', cell: (i) => i.version, align: 'right' },
            {
              title: 'gray',
              cell: (i) => (i.gray === null ? '' : <Badge tone="warn">gray</Badge>),
            },
            { title: 'updated', cell: (i) => when(i.updatedAt) },
          ]}
        />
      </Card>
      {item === undefined ? null : (
        <ItemDetail
          key={`${item.app}/${item.group}/${item.key}`}
          item={item}
          onChange={items.reload}
        />
      )}
    </div>
  );
}
