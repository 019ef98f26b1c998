/**
 * Faults at MQ: a sender in front of a producer (`faultySender(agent, producer).send(...)`)
 * for `mq-produce`, and a handler wrapper (`handler: faultyHandler(agent, { topic, group },
 * fn)`) for `mq-consume`. A failed consume is nacked and redelivered, as a real one; a
 * dropped send resolves without storing the message (the message is lost, as a broker
 * losing it would), a dropped delivery is acked unhandled.
 */
import { currentContext } from '../core/context.js';
import { type OutgoingMessage, TopicNames } from '../mq/message-types.js';
import type { SendResult } from '../mq/producer.js';
import type { ConsumedMessage } from '../mq/wire-encoding.js';
import type { DrillAgent } from './drill-agent.js';
import { runFault } from './fault-action.js';

/** What {@link faultySender} needs of a producer. */
export interface MessageSender {
  send(topic: string, message: OutgoingMessage): Promise<SendResult>;
}

/** A sender that runs `agent`'s `mq-produce` faults before handing messages to `producer`. */
export function faultySender(agent: DrillAgent, producer: MessageSender): MessageSender {
  return {
    async send(topic, message) {
      if (agent.has('mq-produce')) {
        const fault = agent.find('mq-produce', { topic });
        if (fault !== undefined && (await runFault(fault, `mq-produce ${topic}`)) === 'drop') {
          const stress = currentContext()?.stress === true;
          return { id: `dropped-by-${fault.id}`, topic: stress ? TopicNames.shadow(topic) : topic };
        }
      }
      return producer.send(topic, message);
    },
  };
}

/** Wraps a consumer's handler so `agent`'s `mq-consume` faults for `topic` / `group` run first. */
export function faultyHandler(
  agent: DrillAgent,
  where: { topic: string; group: string },
  handler: (message: ConsumedMessage) => Promise<void> | void,
): (message: ConsumedMessage) => Promise<void> {
  return async (message) => {
    if (agent.has('mq-consume')) {
      const fault = agent.find('mq-consume', where);
      if (
        fault !== undefined &&
        (await runFault(fault, `mq-consume ${where.topic}/${where.group}`)) === 'drop'
      )
        return;
    }
    await handler(message);
  };
}
