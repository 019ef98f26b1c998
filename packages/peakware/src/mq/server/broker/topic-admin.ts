/**
 * Topics as the broker creates them: a request checked and given its secrets, and the
 * shadow topic `%SHADOW%<topic>` that stress traffic goes to, made on first use with the
 * real topic's settings.
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../../../core/errors.js';
import { TopicNames } from '../../message-types.js';
import type { MessageStore } from '../message-store.js';
import { checkName } from './name-check.js';

/** A topic as `POST /api/v1/mq/topics` asks for it, unchecked. */
export interface CreateTopicRequest {
  name: unknown;
  queues?: unknown;
  ordered?: unknown;
  secured?: unknown;
  maxBodyBytes?: unknown;
  /** The message database to place it on (`mq.databases`); default `main`, the node's own. */
  database?: unknown;
}

/** A created (or already existing) topic; the secrets only when it was just created. */
export interface CreatedTopic {
  created: boolean;
  name: string;
  queues: number;
  ordered: boolean;
  /** The database it is on (`main`: the node's own). */
  database: string;
  produceSecret?: string;
  consumeSecret?: string;
}

/** Creates a topic; `secured` generates produce and consume secrets (returned once). */
export async function createTopic(
  store: MessageStore,
  defaultMaxBodyBytes: number,
  spec: CreateTopicRequest,
): Promise<CreatedTopic> {
  const name = checkName('topic', spec.name);
  const queues = spec.queues ?? 4;
  if (typeof queues !== 'number' || !Number.isInteger(queues) || queues < 1 || queues > 256) {
    throw new InvalidArgumentError(
      `queues must be an integer 1-256, got ${JSON.stringify(queues)}`,
      { details: { input: 'queues' } },
    );
  }
  const maxBody = spec.maxBodyBytes ?? defaultMaxBodyBytes;
  if (
    typeof maxBody !== 'number' ||
    !Number.isInteger(maxBody) ||
    maxBody < 1 ||
    maxBody > 4 * 1024 * 1024
  ) {
    throw new InvalidArgumentError(
      `maxBodyBytes must be an integer 1-4194304, got ${JSON.stringify(maxBody)}`,
      {
        details: { input: 'maxBodyBytes' },
      },
    );
  }
  if (spec.database !== undefined && typeof spec.database !== 'string')
    throw new InvalidArgumentError(
      `database must be a name, got ${JSON.stringify(spec.database)}`,
      {
        details: { input: 'database' },
      },
    );
  const secured = spec.secured === true;
  const produceSecret = secured ? `mqp_${randomBytes(24).toString('base64url')}` : null;
  const consumeSecret = secured ? `mqc_${randomBytes(24).toString('base64url')}` : null;
  const { record, created } = await store.createTopic({
    name,
    queues,
    ordered: spec.ordered === true,
    maxBodyBytes: maxBody,
    produceSecret,
    consumeSecret,
    ...(spec.database === undefined ? {} : { database: spec.database }),
  });
  return {
    created,
    name: record.name,
    queues: record.queues,
    ordered: record.ordered,
    database: await store.databaseOf(record.name),
    ...(created && produceSecret !== null && consumeSecret !== null
      ? { produceSecret, consumeSecret }
      : {}),
  };
}

/** The shadow topic of `topic` for stress traffic, created on first use. */
export async function shadowTopicOf(store: MessageStore, topic: string): Promise<string> {
  const real = await store.requireTopic(topic);
  const name = TopicNames.shadow(topic);
  if ((await store.topic(name)) === undefined) {
    await store.createTopic({
      name,
      queues: real.queues,
      ordered: real.ordered,
      internal: true,
      maxBodyBytes: real.maxBodyBytes,
      produceSecret: real.produceSecret,
      consumeSecret: real.consumeSecret,
    });
  }
  return name;
}
