// Marks a function as a Fastify plugin that decorates the instance it is registered on (what
// the `fastify-plugin` package does), with the three symbols Fastify reads, so the library
// needs no dependency for it.
export function asFastifyPlugin<T extends object>(plugin: T, name: string): T {
  const marked = plugin as unknown as Record<symbol, unknown>;
  marked[Symbol.for('skip-override')] = true;
  marked[Symbol.for('fastify.display-name')] = name;
  marked[Symbol.for('plugin-meta')] = { name, fastify: '5.x' };
  return plugin;
}
