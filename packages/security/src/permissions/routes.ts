/**
 * Who serves and who publishes each model type and scope: from it come the relays and clearance
 * producers of the worker config, and the warnings about a scope with one side missing.
 */
export interface Routes {
  /** Worker accounts by model type, then scope. */
  served: Map<string, Map<string, Set<string>>>;
  /** Producer accounts by model type, then scope. */
  published: Map<string, Map<string, Set<string>>>;
}

export function emptyRoutes(): Routes {
  return { served: new Map(), published: new Map() };
}

export function record(
  routes: Map<string, Map<string, Set<string>>>,
  modelType: string,
  scope: string,
  user: string,
): void {
  let byScope = routes.get(modelType);
  if (byScope === undefined) {
    byScope = new Map();
    routes.set(modelType, byScope);
  }
  let users = byScope.get(scope);
  if (users === undefined) {
    users = new Set();
    byScope.set(scope, users);
  }
  users.add(user);
}

/** Sorted by code unit, as the generated files are: the same declaration gives the same bytes. */
export function sorted(values: Iterable<string>): string[] {
  return [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
