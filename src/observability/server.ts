import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/** Parses `host:port`; only loopback or an explicit address is accepted, never a default wildcard. */
export const parseAddress = (address: string, flag: string): { host: string; port: number } => {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at);
  const port = Number(address.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`${flag} must be host:port (e.g. 127.0.0.1:8080), not "${address}"`);
  return { host, port };
};

export type ProbeServerOptions = {
  address: string;
  flag: string;
  registry?: Registry;
  ready?: () => boolean;
};

/** Serves /metrics, /healthz and /readyz (ready only when `ready()` says so). */
export const startProbeServer = async (options: ProbeServerOptions): Promise<Server> => {
  const { host, port } = parseAddress(options.address, options.flag);
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
        .end(ready ? 'ok' : 'not ready: caches not synced, kcp not answering, or not the leader');
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return server;
};
