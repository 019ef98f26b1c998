/**
 * What an app reads of a plan: degrade switches (`flags/<name>`), change entries
 * (`entries/<entry>`, closed during a promotion: refunds, address changes) and consumer
 * pauses (`mq-pause/<group>`), all from the app's config, so applying or rolling back a plan
 * reaches every instance with the config push. Cache switches are `peakware/cache`'s
 * `bindCacheSettings`, guard rules guard's `ConfigRuleSource`, weights the registry's.
 */
import type { ConfigSource } from '../config/config-source.js';
import { errorMessage } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { PLAN_GROUPS } from './plan-spec.js';

function parsed(config: ConfigSource, item: string): unknown {
  const e = config.entry(item);
  if (e === undefined) return undefined;
  try {
    return JSON.parse(e.value);
  } catch {
    return undefined;
  }
}

/** The value of the degrade switch `flags/<name>`, or `fallback` when unset (or null). */
export function readFlag<T>(config: ConfigSource, name: string, fallback: T): T {
  const v = parsed(config, `${PLAN_GROUPS.flag}/${name}`);
  return v === undefined || v === null ? fallback : (v as T);
}

/** False while a plan has closed the change entry `entries/<entry>`; open otherwise. */
export function entryOpen(config: ConfigSource, entry: string): boolean {
  const v = parsed(config, `${PLAN_GROUPS.entry}/${entry}`) as { open?: unknown } | undefined;
  return v?.open !== false;
}

/** True while a plan pauses the consumer group `group` (`mq-pause/<group>`). */
export function consumerPaused(config: ConfigSource, group: string): boolean {
  const v = parsed(config, `${PLAN_GROUPS.mqPause}/${group}`) as { paused?: unknown } | undefined;
  return v?.paused === true;
}

/** What {@link bindConsumerPause} starts and stops: a `Consumer` of `peakware/mq`. */
export interface PausableConsumer {
  start(): unknown;
  close(): Promise<void>;
}

/**
 * Runs `consumer` while `mq-pause/<group>` says not paused: closes it (handlers finish,
 * acks sent, the group's queues move to others) when a plan pauses the group, starts it
 * again when the plan is rolled back. Starts it now unless paused. Returns the unbinding.
 */
export function bindConsumerPause(
  config: ConfigSource,
  group: string,
  consumer: PausableConsumer,
  logger: Logger = silentLogger(),
): () => void {
  let running = false;
  let chain = Promise.resolve();
  const follow = () => {
    const paused = consumerPaused(config, group);
    chain = chain.then(async () => {
      try {
        if (paused && running) {
          running = false;
          await consumer.close();
          logger.info({ group }, 'plan: consumer paused');
        } else if (!paused && !running) {
          running = true;
          consumer.start();
          logger.info({ group }, 'plan: consumer running');
        }
      } catch (err) {
        logger.warn({ err: errorMessage(err), group }, 'plan: consumer switch failed');
      }
    });
  };
  const unwatch = config.watch(`${PLAN_GROUPS.mqPause}/${group}`, follow);
  follow();
  return unwatch;
}
