/**
 * A config item edited as JSON text and published to the config center (with a built-in
 * schema for governance items: guard rules, routing rules, weights). A refused value shows
 * each problem the config center names, by path, under the text.
 */
import { useEffect, useState } from 'preact/hooks';
import type { ItemRef } from '../../admin/config-admin.js';
import type { ConfigSchema } from '../../config/config-schema.js';
import { ApiError, api } from './api.js';
import { useLoad } from './hooks.js';
import { useAuthor, useCanChange } from './session.js';
import { ActionResult, Button, useAction } from './ui.js';

/** The problems a refused publish names: `[{ path, reason }]`. */
export function problemsOf(err: unknown): { path: string; reason: string }[] {
  if (!(err instanceof ApiError)) return [];
  const problems = err.details.problems;
  return Array.isArray(problems) ? (problems as { path: string; reason: string }[]) : [];
}

/** Loads an item; undefined when it does not exist yet. */
export function useItem(item: ItemRef) {
  return useLoad(
    () =>
      api.config.get(item).catch((err) => {
        if (err instanceof ApiError && err.status === 404) return undefined;
        throw err;
      }),
    [item.app, item.group, item.key],
  );
}

/** Edits one JSON item and publishes it. */
export function ConfigJsonEditor(props: {
  item: ItemRef;
  schema?: ConfigSchema;
  empty: string;
  testId?: string;
}) {
  const loaded = useItem(props.item);
  const [text, setText] = useState('');
  const action = useAction();
  const canChange = useCanChange();
  const author = useAuthor();
  useEffect(() => setText(loaded.data?.value ?? props.empty), [loaded.data, props.empty]);
  const publish = () =>
    action.run(async () => {
      const r = await api.config.publish(props.item, {
        value: text,
        expectedVersion: loaded.data?.version ?? 0,
        author,
        comment: 'from the console',
        ...(props.schema === undefined ? {} : { schema: props.schema }),
      });
      loaded.reload();
      return `published version ${r.version}`;
    });
  const problems = problemsOf(action.error);
  return (
    <div class="editor" data-testid={props.testId}>
      <p class="muted small">
        {props.item.app}/{props.item.group}/{props.item.key}:{' '}
        {loaded.data === undefined ? 'not published yet' : `version ${loaded.data.version}`}
      </p>
      <textarea
        rows={10}
        spellcheck={false}
        value={text}
        onInput={(e) => setText(e.currentTarget.value)}
        aria-label={`${props.item.group}/${props.item.key}`}
      />
      {problems.length === 0 ? null : (
        <ul class="problems" data-testid="problems">
          {problems.map((p) => (
            <li key={p.path + p.reason}>
              <code>{p.path}</code> {p.reason}
            </li>
          ))}
        </ul>
      )}
      <Button kind="primary" disabled={!canChange || action.busy} onClick={publish}>
        Publish
      </Button>
      <ActionResult error={problems.length > 0 ? undefined : action.error} note={action.note} />
    </div>
  );
}
