/**
 * The traffic-shaping controllers a flow rule delegates to, after Sentinel's: reject above
 * the threshold (`DefaultController`), warm up from a cold threshold with a token bucket
 * (`WarmUpController`, Guava's SmoothWarmingUp), space requests evenly with a bounded queue
 * (`RateLimiterController`, leaky bucket), or both (`WarmUpRateLimiterController`).
 *
 * `canPass` answers with a number: -1 refuse, 0 pass now, > 0 pass after waiting that many ms.
 */
import type { StatNode } from './stat-node.js';

/** Decides whether one more call may pass a flow rule's threshold. */
export interface TrafficShapingController {
  /** -1 to refuse, 0 to admit now, or a wait in ms before the call may start. */
  canPass(node: StatNode, acquire: number, now: number): number;
}

/** Refuses at once when the QPS or concurrency would pass `count`. */
export class DefaultController implements TrafficShapingController {
  constructor(
    readonly count: number,
    readonly grade: 'qps' | 'concurrency',
  ) {}

  canPass(node: StatNode, acquire: number, now: number): number {
    const current = this.grade === 'qps' ? node.passQps(now) : node.concurrency;
    return current + acquire > this.count ? -1 : 0;
  }
}

/**
 * The warm-up token bucket shared by the two warm-up controllers. Tokens pile up while the
 * resource is quiet (up to maxToken); while more than warningToken are stored, the
 * threshold is below `count`, rising along a straight line in 1/QPS as they drain, from
 * count / coldFactor to count over about warmUpPeriodSec.
 */
class WarmUpBucket {
  readonly warningToken: number;
  readonly maxToken: number;
  readonly slope: number;
  storedTokens = 0;
  lastFilledTime = 0;

  constructor(
    readonly count: number,
    warmUpPeriodSec: number,
    readonly coldFactor: number,
  ) {
    this.warningToken = Math.floor((warmUpPeriodSec * count) / (coldFactor - 1));
    this.maxToken =
      this.warningToken + Math.floor((2 * warmUpPeriodSec * count) / (1 + coldFactor));
    this.slope = (coldFactor - 1) / count / Math.max(1, this.maxToken - this.warningToken);
  }

  /** Refills (or drains) the bucket once per whole second, from the previous second's QPS. */
  sync(node: StatNode, now: number): void {
    const currentTime = now - (now % 1000);
    if (currentTime <= this.lastFilledTime) return;
    const previousQps = node.previousPassQps();
    const old = this.storedTokens;
    let next = old;
    // Below the warning line the bucket refills freely; above it only while traffic is low.
    if (old < this.warningToken || previousQps < this.count / this.coldFactor) {
      next = old + ((currentTime - this.lastFilledTime) * this.count) / 1000;
    }
    next = Math.min(next, this.maxToken);
    this.storedTokens = Math.max(next - previousQps, 0);
    this.lastFilledTime = currentTime;
  }

  /** The threshold in force now: below `count` while the bucket is above the warning line. */
  threshold(): number {
    const rest = this.storedTokens;
    if (rest < this.warningToken) return this.count;
    const above = rest - this.warningToken;
    return 1 / (above * this.slope + 1 / this.count);
  }
}

/** Warm-up: the threshold starts at count / coldFactor and climbs to count. */
export class WarmUpController implements TrafficShapingController {
  readonly #bucket: WarmUpBucket;

  constructor(count: number, warmUpPeriodSec: number, coldFactor: number) {
    this.#bucket = new WarmUpBucket(count, warmUpPeriodSec, coldFactor);
  }

  canPass(node: StatNode, acquire: number, now: number): number {
    this.#bucket.sync(node, now);
    // A tiny epsilon, like Java's Math.nextUp, so the float threshold does not round a call out.
    return node.passQps(now) + acquire <= this.#bucket.threshold() + 1e-9 ? 0 : -1;
  }

  /** The threshold in force now (for metrics and tests). */
  threshold(): number {
    return this.#bucket.threshold();
  }
}

/**
 * Queueing: one call every 1000 / count ms; a call that would wait longer than
 * maxQueueingTimeMs is refused. The interval may be fractional (count above 1000).
 */
export class RateLimiterController implements TrafficShapingController {
  #latestPassedTime = -1;

  constructor(
    readonly count: number,
    readonly maxQueueingTimeMs: number,
    readonly warmUp?: WarmUpBucketOptions,
  ) {
    if (warmUp !== undefined)
      this.#bucket = new WarmUpBucket(count, warmUp.warmUpPeriodSec, warmUp.coldFactor);
  }

  readonly #bucket: WarmUpBucket | undefined;

  canPass(node: StatNode, acquire: number, now: number): number {
    if (acquire <= 0) return 0;
    if (this.count <= 0) return -1;
    let qps = this.count;
    if (this.#bucket !== undefined) {
      this.#bucket.sync(node, now);
      qps = this.#bucket.threshold();
    }
    const costTime = (acquire / qps) * 1000;
    const expected = this.#latestPassedTime + costTime;
    if (expected <= now) {
      this.#latestPassedTime = now;
      return 0;
    }
    const wait = expected - now;
    if (wait > this.maxQueueingTimeMs) return -1;
    this.#latestPassedTime = expected;
    return wait;
  }
}

/** The warm-up part of {@link RateLimiterController} (warm-up + queueing). */
export interface WarmUpBucketOptions {
  warmUpPeriodSec: number;
  coldFactor: number;
}
