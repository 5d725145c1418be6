import { matchesTopic } from './topic-pattern.ts';

/** The exchange types the embedded broker routes; Warren declares topic and direct ones. */
export type ExchangeType = 'direct' | 'topic' | 'fanout';

interface Binding {
  readonly queue: string;
  readonly key: string;
}

/** A named exchange and its bindings to queues. */
export class Exchange {
  readonly #bindings: Binding[] = [];

  constructor(
    readonly name: string,
    readonly type: ExchangeType,
  ) {}

  /** Adds a binding; binding the same queue with the same key again changes nothing. */
  bind(queue: string, key: string): void {
    if (this.#bindings.some((b) => b.queue === queue && b.key === key)) return;
    this.#bindings.push({ queue, key });
  }

  /** Removes every binding to `queue` (the queue was deleted). */
  forgetQueue(queue: string): void {
    for (let index = this.#bindings.length - 1; index >= 0; index -= 1) {
      if (this.#bindings[index]!.queue === queue) this.#bindings.splice(index, 1);
    }
  }

  /** The queues a message with this routing key goes to, each once, in binding order. */
  route(routingKey: string): string[] {
    const queues = new Set<string>();
    for (const binding of this.#bindings) {
      if (this.#matches(binding.key, routingKey)) queues.add(binding.queue);
    }
    return [...queues];
  }

  #matches(key: string, routingKey: string): boolean {
    switch (this.type) {
      case 'fanout':
        return true;
      case 'direct':
        return key === routingKey;
      case 'topic':
        return matchesTopic(key, routingKey);
    }
  }
}
