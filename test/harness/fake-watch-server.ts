import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { KubeObject } from '../../src/kcp-client-ts/types.ts';

type Change = { rv: number; type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: KubeObject };

/**
 * A tiny list/watch server over plain HTTP on 127.0.0.1 for the watch layer's failure modes,
 * which a real kcp cannot be made to show on demand: expired resourceVersions (410), dropped
 * connections and silent stalls. It serves one namespaced resource under any path.
 */
export class FakeWatchServer {
  readonly #server: Server;
  readonly #objects = new Map<string, KubeObject>();
  readonly #log: Change[] = [];
  readonly #watchers = new Set<{ res: ServerResponse; from: number }>();
  #rv = 100;
  /** Watches asking for a resourceVersion below this get a 410 ERROR event. */
  #oldestRv = 0;
  /** While true, open watches receive nothing (a stall); new ones still get their backlog. */
  stalled = false;
  lists = 0;
  watches = 0;
  port = 0;

  constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    this.dropWatches();
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  upsert(name: string, data: Record<string, unknown>): void {
    const exists = this.#objects.has(name);
    const object: KubeObject = {
      apiVersion: 'example.test/v1',
      kind: 'Widget',
      metadata: { name, namespace: 'default', resourceVersion: String(++this.#rv), annotations: { 'kcp.io/cluster': 'c1' } },
      ...data,
    };
    this.#objects.set(name, object);
    this.#record({ rv: this.#rv, type: exists ? 'MODIFIED' : 'ADDED', object });
  }

  delete(name: string): void {
    const old = this.#objects.get(name);
    if (!old) return;
    this.#objects.delete(name);
    this.#record({ rv: ++this.#rv, type: 'DELETED', object: { ...old, metadata: { ...old.metadata, resourceVersion: String(this.#rv) } } });
  }

  /** Forgets history: every resourceVersion up to now becomes too old to watch from. */
  compact(): void {
    this.#oldestRv = this.#rv + 1;
    this.#log.length = 0;
  }

  /** Cuts every open watch connection mid-stream. */
  dropWatches(): void {
    for (const w of this.#watchers) w.res.socket?.destroy();
    this.#watchers.clear();
  }

  names(): string[] {
    return [...this.#objects.keys()].sort();
  }

  get openWatches(): number {
    return this.#watchers.size;
  }

  #record(change: Change): void {
    this.#log.push(change);
    if (this.stalled) return;
    for (const w of this.#watchers) w.res.write(`${JSON.stringify({ type: change.type, object: change.object })}\n`);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.origin);
    if (url.searchParams.get('watch') !== 'true') {
      this.lists++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ kind: 'WidgetList', metadata: { resourceVersion: String(this.#rv) }, items: [...this.#objects.values()] }));
      return;
    }
    this.watches++;
    const from = Number(url.searchParams.get('resourceVersion') ?? this.#rv);
    res.writeHead(200, { 'content-type': 'application/json' });
    if (from < this.#oldestRv - 1) {
      res.end(
        `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: `too old resource version: ${from}` } })}\n`,
      );
      return;
    }
    for (const change of this.#log) {
      if (change.rv > from) res.write(`${JSON.stringify({ type: change.type, object: change.object })}\n`);
    }
    const watcher = { res, from };
    this.#watchers.add(watcher);
    res.on('close', () => this.#watchers.delete(watcher));
  }
}
