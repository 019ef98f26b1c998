/** The console's small building blocks: cards, tables, figures, buttons, fields, messages. */
import type { ButtonHTMLAttributes, ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { DiffLine } from '../../config/line-diff.js';
import { errorText } from './api.js';
import { href, navigate } from './router.js';

/** A number for a person: 1 234, 12.3, 0.05. */
export function num(n: number | null | undefined, digits = 1): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  return n.toFixed(Number.isInteger(n) ? 0 : digits);
}

/** A duration in ms: 0.42 ms, 12 ms, 1.3 s. */
export function ms(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  if (n >= 1000) return `${(n / 1000).toFixed(1)} s`;
  return `${n < 10 ? n.toFixed(2) : Math.round(n)} ms`;
}

/** A time of day (or date and time when not today). */
export function when(t: string | number | Date | null | undefined): string {
  if (t === null || t === undefined) return '–';
  const d = new Date(t);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString('en-GB') : d.toLocaleString('en-GB');
}

/** A resource's name for a person (guard's inbound node is every call a process took). */
export function resourceName(resource: string): string {
  return resource === '__inbound__' ? 'all inbound calls' : resource;
}

/** A titled box. */
export function Card(props: {
  title?: ComponentChildren;
  actions?: ComponentChildren;
  children: ComponentChildren;
  wide?: boolean;
  testId?: string;
}) {
  return (
    <section class={props.wide ? 'card wide' : 'card'} data-testid={props.testId}>
      {props.title === undefined && props.actions === undefined ? null : (
        <header>
          <h2>{props.title}</h2>
          <div class="actions">{props.actions}</div>
        </header>
      )}
      {props.children}
    </section>
  );
}

/** One big figure with its label. */
export function Stat(props: {
  label: string;
  value: ComponentChildren;
  tone?: string;
  testId?: string;
}) {
  return (
    <div class={`stat ${props.tone ?? ''}`} data-testid={props.testId}>
      <div class="value">{props.value}</div>
      <div class="label">{props.label}</div>
    </div>
  );
}

/** A column of a {@link Table}. */
export interface Column<T> {
  title: string;
  cell: (row: T) => ComponentChildren;
  align?: 'right';
}

/** A table of rows; `empty` when there are none. */
export function Table<T>(props: {
  rows: readonly T[];
  columns: Column<T>[];
  empty?: string;
  rowKey?: (row: T, i: number) => string;
  onRow?: (row: T) => void;
  selected?: (row: T) => boolean;
  testId?: string;
}) {
  if (props.rows.length === 0) return <p class="empty">{props.empty ?? 'Nothing yet.'}</p>;
  return (
    <div class="table-wrap">
      <table data-testid={props.testId}>
        <thead>
          <tr>
            {props.columns.map((c) => (
              <th key={c.title} class={c.align}>
                {c.title}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row, i) => (
            <tr
              key={props.rowKey?.(row, i) ?? String(i)}
              class={`${props.onRow ? 'clickable' : ''} ${props.selected?.(row) ? 'selected' : ''}`}
              onClick={props.onRow ? () => props.onRow!(row) : undefined}
            >
              {props.columns.map((c) => (
                <td key={c.title} class={c.align}>
                  {c.cell(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** An error answer, in words. */
export function ErrorBox(props: { error: unknown }) {
  if (props.error === undefined || props.error === null) return null;
  return (
    <p class="error" role="alert">
      {errorText(props.error)}
    </p>
  );
}

/** A label with a tone: ok, warn, bad, stress. */
export function Badge(props: { tone?: string; children: ComponentChildren }) {
  return <span class={`badge ${props.tone ?? ''}`}>{props.children}</span>;
}

/** A button (never a form submit unless asked). */
export function Button(
  props: ButtonHTMLAttributes<HTMLButtonElement> & {
    kind?: 'primary' | 'danger';
    submit?: boolean;
  },
) {
  const { kind, submit, ...rest } = props;
  return <button {...rest} type={submit ? 'submit' : 'button'} class={`btn ${kind ?? ''}`} />;
}

/** A labelled field. */
export function Field(props: { label: string; error?: string; children: ComponentChildren }) {
  return (
    // biome-ignore lint/a11y/noLabelWithoutControl: the control is the child passed in
    <label class={props.error ? 'field invalid' : 'field'}>
      <span>{props.label}</span>
      {props.children}
      {props.error ? <em class="field-error">{props.error}</em> : null}
    </label>
  );
}

/** Tabs over a page's parts. */
export function Tabs(props: {
  tabs: readonly { id: string; title: string }[];
  active: string;
  onChange: (id: string) => void;
}) {
  return (
    <nav class="tabs">
      {props.tabs.map((t) => (
        <button
          type="button"
          key={t.id}
          class={t.id === props.active ? 'tab active' : 'tab'}
          onClick={() => props.onChange(t.id)}
        >
          {t.title}
        </button>
      ))}
    </nav>
  );
}

/** Runs a change, showing its error or a short note of what it did. */
export function useAction(): {
  run: (what: () => Promise<string | undefined>) => Promise<boolean>;
  busy: boolean;
  error: unknown;
  note: string | undefined;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [note, setNote] = useState<string | undefined>(undefined);
  return {
    busy,
    error,
    note,
    run: async (what) => {
      setBusy(true);
      setError(undefined);
      setNote(undefined);
      try {
        setNote(await what());
        return true;
      } catch (err) {
        setError(err);
        return false;
      } finally {
        setBusy(false);
      }
    },
  };
}

/** What a {@link useAction} ended with. */
export function ActionResult(props: { error: unknown; note: string | undefined }) {
  if (props.error !== undefined) return <ErrorBox error={props.error} />;
  return props.note === undefined ? null : (
    <p class="note" role="status">
      {props.note}
    </p>
  );
}

/** A link to a console page (a real href, followed without a page load). */
export function PageLink(props: {
  page: string;
  query?: Record<string, string | undefined>;
  children: ComponentChildren;
}) {
  return (
    <a
      class="link"
      href={href(props.page, props.query)}
      onClick={(e) => {
        e.preventDefault();
        navigate(props.page, props.query);
      }}
    >
      {props.children}
    </a>
  );
}

/** A line diff (`+` added, `-` removed, ` ` kept), one line a row. */
export function DiffLines(props: { lines: readonly DiffLine[] }) {
  return (
    <pre class="diff">
      {props.lines.map((l, i) => (
        <div key={String(i)} class={l.op === '+' ? 'add' : l.op === '-' ? 'del' : ''}>
          {l.op} {l.text}
        </div>
      ))}
    </pre>
  );
}
