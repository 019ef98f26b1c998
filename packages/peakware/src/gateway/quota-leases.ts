/**
 * Quotas per app per API, exact across any number of gateways without a shared-store round
 * trip per request: each gateway leases calls from the control plane (which counts them in
 * PostgreSQL, both rows locked, so two gateways never take the same call) and spends them
 * locally. A lease asks for about 200 ms of this gateway's recent rate, or four lease round
 * trips' worth when the control plane answers slower than 50 ms, and the next one is asked
 * for when half of that is left, so calls do not run out while it travels (a dry lease
 * stalls every request until the answer, which lowers the rate and so the next lease: a
 * slow control plane would pin the gateway at one small lease per round trip). The control
 * plane grants at most an eighth of what is left, so near the end of a quota leases shrink
 * to one call and no gateway sits on calls another needs. Calls a gateway leased and did not use
 * for 2 s go back (and all of them at close), so the count becomes exact when traffic
 * stops. A gateway that cannot reach the control plane admits (and counts as unmetered)
 * for a second at a time rather than stop: the quota is a business limit, guard rules are
 * the protection.
 *
 * A subscription without a quota leases nothing (the control plane answers "unlimited" for
 * 5 s at a time, asked again a second before that lapses), but its calls are still
 * counted, as every API gateway meters its callers: the gateway adds them up locally and
 * reports them every {@link USE_REPORT_MS} ms and at close, every subscription's in one
 * request, in the UTC day and month it took them in. So `peak gateway quota ls` and the
 * console show every subscription's use, and a quota set later starts from the day's use.
 * Metering is not exact the way a quota is: a gateway killed with `kill -9` loses up to 5 s
 * of its count, and a report whose answer is lost is sent again, so it may count twice.
 * While the control plane fails, a lease (or a renewal) is tried once a second, never on
 * every call.
 */
import type { ControlPlaneClient } from '../core/control-plane-client.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { type QuotaPeriods, quotaPeriods } from './quota-periods.js';

/** What the control plane answered a lease request (see gateway-store.ts). */
interface LeaseAnswer {
  granted: number;
  unlimited: boolean;
  validUntil: number;
  resetAt: number;
  remaining: number;
  day: string;
  month: string;
}

/** A refusal: the quota is spent (or not granted) until `resetAt`. */
export interface QuotaRefusal {
  resetAt: number;
}

interface LeaseState {
  app: string;
  api: string;
  left: number;
  unlimited: boolean;
  validUntil: number;
  day: string;
  month: string;
  refusedUntil: number;
  resetAt: number;
  downUntil: number;
  inflight: Promise<void> | undefined;
  /** Requests waiting for a lease. */
  waiting: number;
  /** Takes per second, smoothed. */
  rate: number;
  rateSecond: number;
  rateCount: number;
  lastUse: number;
  /** How long a lease call took, ms, smoothed. */
  leaseMs: number;
  /** Calls admitted without a quota (unlimited) and not yet reported: metering. */
  used: number;
  /** The UTC day and month those calls were taken in. */
  usedPeriods: QuotaPeriods | undefined;
  /** When this subscription's use was last reported, ms (the injected clock). */
  reportedAt: number;
}

/** The traffic a lease covers at least, ms of the recent rate. */
const LEASE_HORIZON_MS = 200;
/** How many lease round trips of traffic a lease covers at least. */
const LEASE_TRIPS = 4;
/** How long an unlimited answer holds before asking again (a quota may be set meanwhile), ms. */
const UNLIMITED_HOLD_MS = 5000;
/** An unlimited answer is asked for again this long before it lapses, ms, so no call waits. */
const UNLIMITED_RENEW_MS = 1000;
/** Unused calls go back after this long without a take, ms. */
const IDLE_RETURN_MS = 2000;
/** How often the calls of a subscription without a quota are reported, ms. */
const USE_REPORT_MS = 5000;
/** Subscriptions in one use report at most (the control plane's limit). */
const MAX_USES_A_REPORT = 10_000;

/** The gateway's quota leases. */
export class QuotaLeases {
  readonly #http: ControlPlaneClient;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #states = new Map<string, LeaseState>();
  readonly #sweeper: NodeJS.Timeout;
  #unmetered = 0;
  #warned = false;
  #warnedUse = false;
  /** Use reports on their way (close waits for them). */
  readonly #reporting = new Set<Promise<void>>();

  constructor(http: ControlPlaneClient, logger: Logger, now: () => number = Date.now) {
    this.#http = http;
    this.#logger = logger;
    this.#now = now;
    this.#sweeper = setInterval(() => {
      this.#returnIdle(false);
      this.#reportUse(false);
    }, 1000);
    this.#sweeper.unref();
  }

  /** Calls admitted while the control plane could not be asked. */
  get unmetered(): number {
    return this.#unmetered;
  }

  #state(app: string, api: string): LeaseState {
    const k = `${app}\n${api}`;
    let s = this.#states.get(k);
    if (s === undefined) {
      s = {
        app,
        api,
        left: 0,
        unlimited: false,
        validUntil: 0,
        day: '',
        month: '',
        refusedUntil: 0,
        resetAt: 0,
        downUntil: 0,
        inflight: undefined,
        waiting: 0,
        rate: 0,
        rateSecond: 0,
        rateCount: 0,
        lastUse: 0,
        leaseMs: 0,
        used: 0,
        usedPeriods: undefined,
        reportedAt: 0,
      };
      this.#states.set(k, s);
    }
    return s;
  }

  /**
   * Takes one call of `app`'s quota for `api`: `true` at once when a lease has calls left, a
   * refusal at once while the quota is known spent, else a promise of either.
   */
  take(app: string, api: string): true | QuotaRefusal | Promise<true | QuotaRefusal> {
    const s = this.#state(app, api);
    const now = this.#now();
    this.#countRate(s, now);
    return this.#takeNow(s, now) ?? this.#takeLater(s);
  }

  #takeNow(s: LeaseState, now: number): true | QuotaRefusal | undefined {
    s.lastUse = now;
    if (now >= s.validUntil) {
      s.left = 0;
      s.unlimited = false;
    }
    if (s.unlimited) {
      this.#meter(s, now);
      // (not while the control plane was just found down: one try a second, as below)
      if (s.validUntil - now < UNLIMITED_RENEW_MS && s.inflight === undefined && now >= s.downUntil)
        void this.#lease(s);
      return true;
    }
    if (s.left > 0) {
      s.left--;
      if (s.left < Math.max(1, this.#want(s) / 2) && s.inflight === undefined && now >= s.downUntil)
        void this.#lease(s);
      return true;
    }
    if (now < s.downUntil) {
      this.#unmetered++;
      return true;
    }
    if (now < s.refusedUntil) return { resetAt: s.resetAt };
    return undefined;
  }

  async #takeLater(s: LeaseState): Promise<true | QuotaRefusal> {
    s.waiting++;
    try {
      // Each lease grants at least one call, or marks the quota spent or the control plane
      // down: the loop ends; the bound only guards against a control plane that grants
      // one call at a time to hundreds of waiters.
      for (let tries = 0; tries < 100; tries++) {
        await (s.inflight ?? this.#lease(s));
        const got = this.#takeNow(s, this.#now());
        if (got !== undefined) return got;
      }
      this.#unmetered++;
      return true;
    } finally {
      s.waiting--;
    }
  }

  /** Counts a call admitted without a quota, in the UTC day it was taken in. */
  #meter(s: LeaseState, now: number): void {
    if (s.usedPeriods === undefined || now >= s.usedPeriods.dayEnd) {
      // A new day: what the old one took is reported in its own day and month.
      if (s.used > 0) void this.#sendUses([s]);
      s.usedPeriods = quotaPeriods(now);
    }
    s.used++;
  }

  /** Puts back a call taken for a request that was refused later (by a guard rule). */
  giveBack(app: string, api: string): void {
    const s = this.#states.get(`${app}\n${api}`);
    if (s === undefined) return;
    // Without a quota: the call is not metered either.
    if (s.unlimited) s.used = Math.max(0, s.used - 1);
    else if (this.#now() < s.validUntil) s.left++;
  }

  #countRate(s: LeaseState, now: number): void {
    const second = Math.floor(now / 1000);
    if (second !== s.rateSecond) {
      s.rate = s.rate === 0 ? s.rateCount : s.rate * 0.5 + s.rateCount * 0.5;
      s.rateSecond = second;
      s.rateCount = 0;
    }
    s.rateCount++;
  }

  /**
   * About 200 ms of recent traffic, or {@link LEASE_TRIPS} lease round trips of it when
   * leases are slower; at least one call, and at least what is waiting.
   */
  #want(s: LeaseState): number {
    const horizonMs = Math.max(LEASE_HORIZON_MS, LEASE_TRIPS * s.leaseMs);
    return Math.max(
      1,
      s.waiting,
      Math.min(100_000, Math.ceil((Math.max(s.rate, s.rateCount) * horizonMs) / 1000)),
    );
  }

  #lease(s: LeaseState): Promise<void> {
    if (s.inflight !== undefined) return s.inflight;
    const want = this.#want(s);
    const sent = performance.now();
    s.inflight = this.#http
      .post<LeaseAnswer>(
        '/api/v1/gateway/quota/lease',
        { app: s.app, api: s.api, want },
        { retry: false, timeoutMs: 2000 },
      )
      .then(
        (a) => {
          const tookMs = performance.now() - sent;
          s.leaseMs = s.leaseMs === 0 ? tookMs : s.leaseMs * 0.5 + tookMs * 0.5;
          const now = this.#now();
          if (a.day !== s.day && s.left > 0 && now < s.validUntil)
            void this.#giveBackRemote(s, s.left);
          if (a.unlimited) {
            s.unlimited = true;
            s.left = 0;
            s.validUntil = now + UNLIMITED_HOLD_MS;
          } else {
            s.unlimited = false;
            s.left += a.granted;
            s.validUntil = a.validUntil;
          }
          s.day = a.day;
          s.month = a.month;
          s.resetAt = a.resetAt;
          // Spent: ask again in a second (calls may come back from other gateways).
          s.refusedUntil = a.granted === 0 && !a.unlimited ? Math.min(a.resetAt, now + 1000) : 0;
          s.downUntil = 0;
        },
        (err: unknown) => {
          s.downUntil = this.#now() + 1000;
          if (!this.#warned) {
            this.#warned = true;
            this.#logger.warn(
              { err: errorMessage(err), app: s.app, api: s.api },
              'quota lease failed; admitting unmetered for now',
            );
          }
        },
      )
      .finally(() => {
        s.inflight = undefined;
      });
    return s.inflight;
  }

  #giveBackRemote(s: LeaseState, units: number): Promise<void> {
    return this.#http
      .post(
        '/api/v1/gateway/quota/return',
        { app: s.app, api: s.api, units, day: s.day, month: s.month },
        { retry: false, timeoutMs: 2000 },
      )
      .then(
        () => undefined,
        (err: unknown) => this.#logger.debug({ err: errorMessage(err) }, 'quota return failed'),
      );
  }

  #returnIdle(all: boolean): Promise<void>[] {
    const now = this.#now();
    const sent: Promise<void>[] = [];
    for (const s of this.#states.values()) {
      if (s.left <= 0 || s.unlimited || s.inflight !== undefined) continue;
      if (!all && now - s.lastUse < IDLE_RETURN_MS) continue;
      const units = s.left;
      s.left = 0;
      if (now < s.validUntil) sent.push(this.#giveBackRemote(s, units));
    }
    return sent;
  }

  /**
   * Reports the calls the given subscriptions without a quota took since their last report:
   * one request for all of them (the control plane writes it in one statement).
   */
  #sendUses(states: LeaseState[]): Promise<void> {
    const now = this.#now();
    const sent = states.map((s) => {
      const taken = { state: s, units: s.used, periods: s.usedPeriods! };
      s.used = 0;
      s.reportedAt = now;
      return taken;
    });
    const uses = sent.map(({ state, units, periods }) => ({
      app: state.app,
      api: state.api,
      units,
      day: periods.day,
      month: periods.month,
    }));
    const request = this.#http
      .post('/api/v1/gateway/quota/use', { uses }, { retry: false, timeoutMs: 2000 })
      .then(
        () => undefined,
        (err: unknown) => {
          // Counted again with the next report of the same day; a day that ended meanwhile
          // loses them (said once).
          for (const { state, units, periods } of sent)
            if (state.usedPeriods === periods) state.used += units;
          if (!this.#warnedUse) {
            this.#warnedUse = true;
            this.#logger.warn(
              { err: errorMessage(err), subscriptions: uses.length },
              'could not report the calls of subscriptions without a quota; they go with the next report',
            );
          }
        },
      )
      .finally(() => this.#reporting.delete(request));
    this.#reporting.add(request);
    return request;
  }

  /** Reports metered use due (every {@link USE_REPORT_MS}), or all of it: one request. */
  #reportUse(all: boolean): Promise<void>[] {
    const now = this.#now();
    const due: LeaseState[] = [];
    for (const s of this.#states.values()) {
      if (s.used === 0) continue;
      if (!all && now - s.reportedAt < USE_REPORT_MS) continue;
      due.push(s);
    }
    const sent: Promise<void>[] = [];
    for (let i = 0; i < due.length; i += MAX_USES_A_REPORT)
      sent.push(this.#sendUses(due.slice(i, i + MAX_USES_A_REPORT)));
    return sent;
  }

  /** Gives every unused call back, reports the calls counted without a quota, and stops. */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    await Promise.all([...this.#states.values()].map((s) => s.inflight));
    await Promise.all([...this.#returnIdle(true), ...this.#reportUse(true), ...this.#reporting]);
  }
}
