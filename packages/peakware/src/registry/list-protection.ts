/**
 * Empty- and shrunken-push protection for one watched key (Nacos' protect threshold, Dubbo's
 * empty protection). The first list a reconnected watch stream brings may come from a
 * control-plane node that has just (re)started and not yet heard from the providers (their
 * leases ran out during the outage): taken as the truth it would pile every call on the few
 * that registered first, or fail them all when the list is empty.
 *
 * So a list from a reconnected stream that holds fewer than `share` of the last known
 * instances starts a hold of `graceMs`: the consumers are served the new list plus the known
 * instances it lacks, and those are probed every `probeEveryMs` (a TCP connect by default):
 * one that fails its probe is served no more. Later lists during the hold are merged the
 * same way. The hold ends when a list with at least `share` of the known ones arrives (taken
 * as it is) or after `graceMs` (the latest list is taken as it is).
 *
 * An empty list on a live stream starts a hold too (Dubbo's empty protection holds every
 * empty push): a control plane too loaded to take the providers' renewals in time lets
 * every lease run out while the providers still answer, and an empty list would fail every
 * call with "no provider" until they register again. Providers that really left fail their
 * probe and go. Outside a hold every other list is the truth (a scale-in from four to one).
 */
import { type Logger, silentLogger } from '../core/logger.js';
import type { InstanceProbe } from './instance-probe.js';
import type { ServiceInstance } from './service-instance.js';

/** Options of a {@link ListProtection}. */
export interface ListProtectionOptions {
  /** The watched key, for logs. */
  key: string;
  /** Share of the known instances (0-1) below which a reconnected stream's list is held; 0: off. */
  share: number;
  /** Longest hold, ms; 0: off. */
  graceMs: number;
  /** How often the known instances missing from the list are probed during a hold, ms. */
  probeEveryMs: number;
  /** Whether a known instance is alive. */
  probe: InstanceProbe;
  logger?: Logger;
  /**
   * Level of the line a hold starts with: `warn` (default) for an SDK client, where a held
   * list means the control plane lost its providers; `info` where an empty list is also the
   * normal end of a graceful stop (the coordinator's own view, read from the store).
   */
  holdLogLevel?: 'warn' | 'info';
}

/** One key's protection: decides what its consumers are served. */
export class ListProtection {
  readonly #o: ListProtectionOptions;
  readonly #serve: (list: ServiceInstance[]) => void;
  readonly #logger: Logger;
  /** The list served when the hold began; undefined when not holding. */
  #known: readonly ServiceInstance[] | undefined;
  /** The latest list the stream brought during the hold. */
  #latest: ServiceInstance[] = [];
  /** Known instances whose last probe failed. */
  readonly #dead = new Set<string>();
  #served = '';
  #grace: NodeJS.Timeout | undefined;
  #prober: NodeJS.Timeout | undefined;
  #probing = false;

  /** `serve` hands a list to the key's consumers. */
  constructor(options: ListProtectionOptions, serve: (list: ServiceInstance[]) => void) {
    this.#o = options;
    this.#serve = serve;
    this.#logger = options.logger ?? silentLogger();
  }

  /** Whether a shrunken list is being held back now. */
  get holding(): boolean {
    return this.#known !== undefined;
  }

  /**
   * A list from the watch stream. `first`: the first for this key on a newly (re)connected
   * stream; `served`: what the consumers have now.
   */
  offer(
    list: ServiceInstance[],
    first: boolean,
    served: readonly ServiceInstance[] | undefined,
  ): void {
    const known = this.#known ?? served;
    const on = this.#o.share > 0 && this.#o.graceMs > 0;
    const shrunk =
      on && known !== undefined && known.length > 0 && list.length < this.#o.share * known.length;
    if (!shrunk || !(first || this.holding || list.length === 0)) {
      this.#end();
      this.#serve(list);
      return;
    }
    this.#latest = list;
    if (this.#known === undefined) this.#begin(known);
    this.#serveMerged();
  }

  /** Stops the hold's timers (the key is no longer watched). */
  close(): void {
    this.#end();
  }

  #begin(known: readonly ServiceInstance[]): void {
    this.#known = known;
    this.#served = signature(known);
    const fields = {
      key: this.#o.key,
      known: known.length,
      listed: this.#latest.length,
      graceMs: this.#o.graceMs,
    };
    const msg =
      'the registry lists fewer than the protect threshold of the known instances (a reconnected stream, or an empty list); serving the known ones too (probed) while providers register again';
    if (this.#o.holdLogLevel === 'info') this.#logger.info(fields, msg);
    else this.#logger.warn(fields, msg);
    this.#grace = setTimeout(() => {
      const latest = this.#latest;
      this.#end();
      this.#serve(latest);
    }, this.#o.graceMs);
    this.#grace.unref();
    this.#prober = setInterval(() => void this.#probeMissing(), this.#o.probeEveryMs);
    this.#prober.unref();
    void this.#probeMissing();
  }

  #end(): void {
    clearTimeout(this.#grace);
    clearInterval(this.#prober);
    this.#grace = undefined;
    this.#prober = undefined;
    this.#known = undefined;
    this.#latest = [];
    this.#dead.clear();
    this.#served = '';
  }

  /** The known instances the latest list lacks. */
  #missing(): ServiceInstance[] {
    const listed = new Set(this.#latest.map((i) => i.instanceId));
    return (this.#known ?? []).filter((i) => !listed.has(i.instanceId));
  }

  /** Serves the latest list plus the known instances it lacks that passed their probe. */
  #serveMerged(): void {
    const merged = [
      ...this.#latest,
      ...this.#missing().filter((i) => !this.#dead.has(i.instanceId)),
    ];
    const sig = signature(merged);
    if (sig === this.#served) return;
    this.#served = sig;
    this.#serve(merged);
  }

  async #probeMissing(): Promise<void> {
    if (this.#probing || this.#known === undefined) return;
    this.#probing = true;
    const known = this.#known;
    try {
      const missing = this.#missing();
      const alive = await Promise.all(missing.map((i) => this.#o.probe(i).catch(() => false)));
      // The hold ended (or another began) while the probes ran: their answers are stale.
      if (this.#known !== known) return;
      missing.forEach((instance, n) => {
        if (alive[n] === true) this.#dead.delete(instance.instanceId);
        else this.#dead.add(instance.instanceId);
      });
      this.#serveMerged();
    } finally {
      this.#probing = false;
    }
  }
}

/** What decides whether a served list changed. */
function signature(list: readonly ServiceInstance[]): string {
  return JSON.stringify(list);
}
