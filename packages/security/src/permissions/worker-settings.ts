import { type Routes, sorted } from './routes.ts';

/** What a handler entry of the worker config takes as its `clearance`. */
export interface HandlerClearance {
  /** The scopes the account serves for the model type. */
  scopes: string[];
  /** By scope, the accounts that may publish it; a scope no producer was given is left out. */
  producers: Record<string, string[]>;
}

/** The parts of one worker account's config that come from the same declaration. */
export interface WorkerSettings {
  user: string;
  /** Its config's `security.relays`. */
  relays: string[];
  /** By model type: the `clearance` of the handler entry that serves it. */
  clearance: Record<string, HandlerClearance>;
}

/**
 * Each worker account's settings. Its relays are the worker accounts that share at least one
 * queue with it, itself included: only they republish into its queues (retries, deferrals and
 * give-backs go back to the queue the job came from). Not the whole fleet: every worker may
 * publish to the default exchange, and so into any queue, and a relay's `x-warren-producer` and
 * raised attempt are believed; trusting a worker of another team would let it pass a job off
 * as one of this team's producers'.
 */
export function workerSettings(routes: Routes): WorkerSettings[] {
  const byUser = new Map<string, Map<string, Set<string>>>();
  for (const [modelType, byScope] of routes.served) {
    for (const [scope, workers] of byScope) {
      for (const user of workers) {
        const handlers = byUser.get(user) ?? new Map<string, Set<string>>();
        byUser.set(user, handlers);
        const scopes = handlers.get(modelType) ?? new Set<string>();
        handlers.set(modelType, scopes);
        scopes.add(scope);
      }
    }
  }

  return sorted(byUser.keys()).map((user) => {
    const handlers = byUser.get(user)!;
    const relays = new Set<string>();
    for (const [modelType, scopes] of handlers) {
      for (const scope of scopes) {
        for (const peer of routes.served.get(modelType)!.get(scope)!) relays.add(peer);
      }
    }
    const clearance: Record<string, HandlerClearance> = {};
    for (const modelType of sorted(handlers.keys())) {
      clearance[modelType] = clearanceOf(modelType, handlers.get(modelType)!, routes);
    }
    return { user, relays: sorted(relays), clearance };
  });
}

function clearanceOf(modelType: string, scopes: Set<string>, routes: Routes): HandlerClearance {
  const producers: Record<string, string[]> = {};
  for (const scope of sorted(scopes)) {
    const publishers = routes.published.get(modelType)?.get(scope);
    if (publishers !== undefined) producers[scope] = sorted(publishers);
  }
  return { scopes: sorted(scopes), producers };
}
