import type { Server } from 'node:http';
import type { Registry } from 'prom-client';

// Not `import { createServer } from 'node:http'`: an ES import of node:http reads every export,
// and its WebSocket getter loads Node's bundled copy of undici (about 2 MiB of source and code)
// beside the undici the broker uses.
const { createServer } = process.getBuiltinModule('node:http');

export type ProbeServerOptions = {
  /** No host: every interface (a bind address of `:8080`). */
  address: { host: string | undefined; port: number };
  registry?: Registry;
  ready?: () => boolean;
};

/** Serves /metrics, /healthz and /readyz (ready only when `ready()` says so). */
export const startProbeServer = async (options: ProbeServerOptions): Promise<Server> => {
  const { host, port } = options.address;
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics' && options.registry) {
      void options.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': options.registry!.contentType });
        res.end(text);
      });
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    if (path === '/readyz' && options.ready) {
      const ready = options.ready();
      res
        .writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
        .end(
          ready
            ? 'ok'
            : 'not ready: the leader has not synced its caches or kcp does not answer, a standby cannot reach the Lease, or the CEL engine failed to load (the log says why)',
        );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (host === undefined) server.listen(port, resolve);
    else server.listen(port, host, resolve);
  });
  return server;
};
