/**
 * The config center's admin API (`/api/v1/config`): apps and items, publish, remove, history
 * and diff, rollback, gray release (start, promote, abort) and the audit trail. Answers are the
 * config server's own view types.
 */

import type { ConfigEntry } from '../config/config-entry.js';
import type { ConfigSchema } from '../config/config-schema.js';
import type { DiffLine } from '../config/line-diff.js';
import type {
  abortGray,
  promoteGray,
  publish,
  removeItem,
  rollback,
  startGray,
} from '../config/server/config-store.js';
import type {
  AuditView,
  ConfigFormat,
  GrayView,
  ItemRef,
  ItemView,
  VersionView,
} from '../config/server/config-views.js';
import type { AdminTransport } from './admin-transport.js';

export type { AuditView, ConfigFormat, GrayView, ItemRef, ItemView, VersionView };

/** An item with the gray release in progress on it, if any. */
export type ConfigItem = ItemView & { gray: GrayView | null };

/** An app and how many items it has. */
export interface ConfigApp {
  app: string;
  items: number;
}

/** What publishing a new version takes. */
export interface PublishRequest {
  /** The value: JSON text (format `json`, the default) or plain text. */
  value: string;
  format?: ConfigFormat;
  /** Sets (or with `null` clears) the JSON Schema every later publish is checked against. */
  schema?: ConfigSchema | null;
  /** Refuse (PEAK_CONFIG_CONFLICT) unless the item is at this version now (0: must not exist). */
  expectedVersion?: number;
  comment?: string;
  /** Who makes the change, for the audit trail. Default `admin`. */
  author?: string;
}

/** What a rollback takes. */
export interface RollbackRequest {
  /** The released version whose value is published again. */
  toVersion: number;
  expectedVersion?: number;
  comment?: string;
  author?: string;
}

/** What starting a gray release takes: the value, and who gets it first. */
export interface GrayRequest {
  value: string;
  format?: ConfigFormat;
  /** Instances with any of these tags get the gray value. */
  tags?: readonly string[];
  /** These instance ids get the gray value. */
  instanceIds?: readonly string[];
  comment?: string;
  author?: string;
}

/** Who ends a gray release, and why. */
export interface GrayEndRequest {
  comment?: string;
  author?: string;
}

/** A line diff between two versions of an item. */
export interface ConfigDiff {
  from: number;
  to: number;
  diff: DiffLine[];
}

/** The answer of a publish: the new version. */
export type PublishResult = Awaited<ReturnType<typeof publish>>;
/** The answer of a rollback: the new version and the one restored. */
export type RollbackResult = Awaited<ReturnType<typeof rollback>>;
/** The answer of a gray start: the released version it sits on. */
export type GrayResult = Awaited<ReturnType<typeof startGray>>;
/** The answer of a promote: the new released version. */
export type PromoteResult = Awaited<ReturnType<typeof promoteGray>>;
/** The answer of a remove: the version the item was at. */
export type RemoveResult = Awaited<ReturnType<typeof removeItem>>;

/** What removing an item takes. */
export interface RemoveRequest {
  /** Refuse (PEAK_CONFIG_CONFLICT) unless the item is at this version now. */
  expectedVersion?: number;
  comment?: string;
  /** Who makes the change, for the audit trail. Default `admin`. */
  author?: string;
}

/** The answer of an abort. */
export type AbortGrayResult = Awaited<ReturnType<typeof abortGray>>;

const BASE = '/api/v1/config';

function itemPath(r: ItemRef): string {
  return `${BASE}/items/${encodeURIComponent(r.app)}/${encodeURIComponent(r.group)}/${encodeURIComponent(r.key)}`;
}

/** The config center's admin calls. */
export class ConfigAdmin {
  readonly #http: AdminTransport;

  constructor(http: AdminTransport) {
    this.#http = http;
  }

  /** Every app with items. */
  async apps(): Promise<ConfigApp[]> {
    return (await this.#http.get<{ apps: ConfigApp[] }>(`${BASE}/apps`)).apps;
  }

  /** An app's items (PEAK_CONFIG_NOT_FOUND when it has none). */
  async items(app: string): Promise<ConfigItem[]> {
    return (await this.#http.get<{ items: ConfigItem[] }>(`${BASE}/items`, { query: { app } }))
      .items;
  }

  /** What one instance of `app` sees (gray values included when it is in the audience). */
  async entries(
    app: string,
    audience: { instance?: string; tags?: readonly string[] } = {},
  ): Promise<ConfigEntry[]> {
    const r = await this.#http.get<{ entries: ConfigEntry[] }>(`${BASE}/entries`, {
      query: { app, instance: audience.instance, tag: audience.tags },
    });
    return r.entries;
  }

  /** One item (PEAK_CONFIG_NOT_FOUND when it does not exist). */
  get(item: ItemRef): Promise<ConfigItem> {
    return this.#http.get(itemPath(item));
  }

  /**
   * Publishes a new version. Retried after a failure only with `expectedVersion` (then a
   * second try cannot publish twice).
   */
  publish(item: ItemRef, request: PublishRequest): Promise<PublishResult> {
    return this.#http.put(itemPath(item), request, {
      idempotent: request.expectedVersion !== undefined,
    });
  }

  /**
   * Removes an item: its versions and audit trail stay, watchers are told it is gone.
   * PEAK_CONFIG_NOT_FOUND when it does not exist; PEAK_CONFIG_CONFLICT during a gray release
   * or when it is not at `expectedVersion`.
   */
  remove(item: ItemRef, request: RemoveRequest = {}): Promise<RemoveResult> {
    return this.#http.delete(itemPath(item), {
      query: {
        expectedVersion: request.expectedVersion,
        comment: request.comment,
        author: request.author,
      },
    });
  }

  /** Released versions, newest first. */
  async history(item: ItemRef, options: { limit?: number } = {}): Promise<VersionView[]> {
    const r = await this.#http.get<{ versions: VersionView[] }>(`${itemPath(item)}/history`, {
      query: { limit: options.limit },
    });
    return r.versions;
  }

  /** One released version. */
  version(item: ItemRef, version: number): Promise<VersionView> {
    return this.#http.get(`${itemPath(item)}/versions/${version}`);
  }

  /** What changed between two versions (default: the last two). */
  diff(item: ItemRef, range: { from?: number; to?: number } = {}): Promise<ConfigDiff> {
    return this.#http.get(`${itemPath(item)}/diff`, { query: { from: range.from, to: range.to } });
  }

  /** Publishes an earlier version's exact value as a new version. */
  rollback(item: ItemRef, request: RollbackRequest): Promise<RollbackResult> {
    return this.#http.post(`${itemPath(item)}/rollback`, request);
  }

  /** Starts a gray release: instances matching tags or ids get `value` first. */
  gray(item: ItemRef, request: GrayRequest): Promise<GrayResult> {
    return this.#http.post(`${itemPath(item)}/gray`, request);
  }

  /** Releases the gray value to every instance as a new version. */
  promote(item: ItemRef, request: GrayEndRequest = {}): Promise<PromoteResult> {
    return this.#http.post(`${itemPath(item)}/gray/promote`, request);
  }

  /** Ends a gray release; gray instances go back to the released value. */
  abortGray(item: ItemRef, request: GrayEndRequest = {}): Promise<AbortGrayResult> {
    return this.#http.post(`${itemPath(item)}/gray/abort`, request);
  }

  /** Who changed what, when and from where, newest first. */
  async audit(
    filter: { app?: string; group?: string; key?: string } = {},
    options: { limit?: number } = {},
  ): Promise<AuditView[]> {
    const r = await this.#http.get<{ audit: AuditView[] }>(`${BASE}/audit`, {
      query: { ...filter, limit: options.limit },
    });
    return r.audit;
  }
}
