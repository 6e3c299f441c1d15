// `node bench/client.js` (after `npm run build`): what retrysafe/client adds per call over raw
// fetch, for a GET and a POST, on one loopback server in one run. Calls run one at a time, in
// interleaved rounds (client, fetch, client, …) so load elsewhere moves both sides alike; each
// row shows the median per-call time, the overhead over fetch and the ratio. Goal: < 0.1 ms.
// A second pair of rows uses an in-process fetch, isolating the client's own CPU cost from the
// network stack (loopback rows swing by 100 µs and more on a loaded machine).
// ky is not compared: its current releases need Node 22 and no Node 20 release is installed here.
import { createServer } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { createClient } from 'retrysafe/client';

const settings = {
  callsPerRound: Number(process.env.BENCH_CLIENT_CALLS ?? 2000),
  rounds: Number(process.env.BENCH_CLIENT_ROUNDS ?? 7),
  warmupCalls: 500,
  goalUs: 100,
};

const order = { items: [{ sku: 'book-1', quantity: 2, unitPriceCents: 1250 }], currency: 'EUR' };
const answer = JSON.stringify({ id: 'o1', status: 'placed', totalCents: 2500 });

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(req.method === 'POST' ? 201 : 200, {
      'content-type': 'application/json',
      location: '/orders/o1',
      etag: '"v1"',
    });
    res.end(answer);
  });
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;
const client = createClient({ baseUrl: base, token: 'bench' });

/** The same work a careful caller does by hand: headers, JSON in and out, the status checked. */
const raw = {
  async get() {
    const res = await fetch(`${base}/orders/o1`, {
      headers: { accept: 'application/json', authorization: 'Bearer bench' },
    });
    if (!res.ok) throw new Error(`GET ${res.status}`);
    return res.json();
  },
  async post() {
    const res = await fetch(`${base}/orders`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        authorization: 'Bearer bench',
      },
      body: JSON.stringify(order),
    });
    if (res.status !== 201) throw new Error(`POST ${res.status}`);
    return res.json();
  },
};
const sdk = {
  async get() {
    const result = await client.get('/orders/o1');
    if (!result.ok) throw new Error(result.error.message);
  },
  async post() {
    const result = await client.post('/orders', order);
    if (!result.ok) throw new Error(result.error.message);
  },
};

async function timePerCallUs(call, count) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await call();
  return Number(process.hrtime.bigint() - start) / 1000 / count;
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

/**
 * The same comparison with a fetch that answers in-process from a ready Response: no socket, so
 * what remains is the client's own CPU cost per call, far less shaken by a busy machine.
 */
const answerIn = (method) => () =>
  Promise.resolve(
    new Response(answer, {
      status: method === 'POST' ? 201 : 200,
      headers: { 'content-type': 'application/json', location: '/orders/o1', etag: '"v1"' },
    }),
  );
const inProcessFetch = (_url, init) => answerIn(init.method)();
const inProcessClient = createClient({ baseUrl: base, token: 'bench', fetch: inProcessFetch });
const inProcess = {
  raw: {
    get: async () => (await inProcessFetch(`${base}/orders/o1`, { method: 'GET' })).json(),
    post: async () =>
      (await inProcessFetch(`${base}/orders`, { method: 'POST', body: JSON.stringify(order) })).json(),
  },
  sdk: {
    get: async () => (await inProcessClient.get('/orders/o1')).ok,
    post: async () => (await inProcessClient.post('/orders', order)).ok,
  },
};

const rows = [];
for (const [transport, pair] of [
  ['loopback HTTP', { raw, sdk }],
  ['in-process fetch', inProcess],
]) {
  for (const method of ['get', 'post']) {
    await timePerCallUs(pair.raw[method], settings.warmupCalls);
    await timePerCallUs(pair.sdk[method], settings.warmupCalls);
    const fetchUs = [];
    const clientUs = [];
    for (let round = 0; round < settings.rounds; round++) {
      clientUs.push(await timePerCallUs(pair.sdk[method], settings.callsPerRound));
      fetchUs.push(await timePerCallUs(pair.raw[method], settings.callsPerRound));
    }
    // Overhead per round (both sides of it measured back to back), then the median of those.
    const overheadUs = median(clientUs.map((us, i) => us - (fetchUs[i] ?? us)));
    rows.push({
      transport,
      call: method.toUpperCase(),
      'fetch µs/call': median(fetchUs).toFixed(1),
      'client µs/call': median(clientUs).toFixed(1),
      'overhead µs/call': overheadUs.toFixed(1),
      'client / fetch': (median(clientUs) / median(fetchUs)).toFixed(3),
      'goal < 100 µs': overheadUs < settings.goalUs ? 'met' : 'MISSED',
    });
  }
}
server.closeAllConnections();
server.close();

console.log(
  `retrysafe/client vs raw fetch, ${settings.rounds} rounds × ${settings.callsPerRound} sequential calls, loopback, Node ${process.versions.node}`,
);
console.table(rows);
console.log('ky: not measured (ky ≥ 1.8 declares Node 22 and no Node 20 release of ky is installed).');
console.log(
  `load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} on ${cpus().length} CPUs`,
);
// Only the in-process rows decide the exit code: they measure the client, not the machine's load.
if (rows.some((row) => row.transport === 'in-process fetch' && row['goal < 100 µs'] !== 'met'))
  process.exitCode = 1;
