import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCA } from '../../hack/kcp/pki.ts';
import { KcpEndpoint, WriteFencedError } from './endpoint.ts';

describe('KcpEndpoint write fence', () => {
  let server: Server;
  let origin = '';
  const received: string[] = [];
  const held: (() => void)[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      received.push(`${req.method} ${req.url}`);
      res.setHeader('content-type', 'application/json');
      // An answer whose body comes after its headers, as a long list or a slow server sends it.
      // An answer held until the test lets it go: a write kcp is slow to answer.
      if (req.url?.endsWith('/held')) {
        held.push(() => res.end('{"metadata":{}}'));
        return;
      }
      if (req.url?.endsWith('/slow-body')) {
        res.write('{"metadata":');
        setTimeout(() => res.end('{}}'), 300);
        return;
      }
      res.end('{"metadata":{}}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => server.close());

  it('refuses writes before they are sent while the fence is closed, lets reads through, and reports accepted writes', async () => {
    const endpoint = new KcpEndpoint({ serverOrigin: origin, allowH2: false });
    let leading = false;
    const writes: string[] = [];
    const fenced = endpoint.fenced({
      writeFence: () => (leading ? undefined : 'not leading'),
      onWrite: (method, url) => writes.push(`${method} ${url}`),
    });
    const url = `${origin}/clusters/root/api/v1/namespaces/default/configmaps`;

    await expect(fenced.json({ method: 'POST', url, body: { metadata: { name: 'a' } } })).rejects.toBeInstanceOf(WriteFencedError);
    await expect(fenced.json({ method: 'DELETE', url: `${url}/a` })).rejects.toThrow('not sent: not leading');
    expect(received).toEqual([]);

    await fenced.json({ method: 'GET', url });
    expect(received).toEqual(['GET /clusters/root/api/v1/namespaces/default/configmaps']);
    expect(writes).toEqual([]);

    leading = true;
    await fenced.json({ method: 'POST', url, body: { metadata: { name: 'a' } } });
    expect(received.at(-1)).toBe('POST /clusters/root/api/v1/namespaces/default/configmaps');
    expect(writes).toEqual([`POST ${url}`]);

    // The unfenced endpoint (the lease lock's) is not affected, and closing the view keeps the shared connections.
    leading = false;
    await fenced.close();
    await endpoint.json({ method: 'PUT', url: `${url}/a`, body: {} });
    expect(received.at(-1)).toBe('PUT /clusters/root/api/v1/namespaces/default/configmaps/a');
    await endpoint.close();
  });

  it("keeps the lease's writes off the connections the broker's writes fill: a capped pool of their own", async () => {
    const endpoint = new KcpEndpoint({ serverOrigin: origin, allowH2: false });
    const fenced = endpoint.fenced({ writeFence: () => undefined });
    const url = `${origin}/clusters/root/api/v1/namespaces/default/configmaps`;
    // More writes than the broker's connections, each answered only when the test lets it go.
    const slow = Array.from({ length: 20 }, () => fenced.json({ method: 'POST', url: `${url}/held`, body: {} }));
    await expect.poll(() => held.length, { timeout: 5_000 }).toBe(16); // the cap: the other four wait for a connection
    await endpoint.json({ method: 'PUT', url: `${url}/lease`, body: {} }); // the lease lock's write is not among them
    expect(received.at(-1)).toBe('PUT /clusters/root/api/v1/namespaces/default/configmaps/lease');
    expect(received.filter((r) => r.endsWith('/held'))).toHaveLength(16);
    while (held.length > 0 || received.filter((r) => r.endsWith('/held')).length < 20) {
      for (const release of held.splice(0)) release();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await Promise.all(slow);
    await fenced.close();
    await endpoint.close();
  });

  it('aborts a write that passed the fence once its deadline has passed', async () => {
    const endpoint = new KcpEndpoint({ serverOrigin: origin, allowH2: false });
    let deadline = Date.now() - 1;
    const fenced = endpoint.fenced({ writeFence: () => undefined, writeDeadline: () => deadline });
    const url = `${origin}/clusters/root/api/v1/namespaces/default/configmaps`;
    await expect(fenced.json({ method: 'POST', url, body: {} })).rejects.toThrow(/abort|timeout/i);
    deadline = Date.now() + 10_000;
    await fenced.json({ method: 'POST', url, body: {} });
    // A deadline from a monotonic clock is fractional: the write is sent all the same.
    deadline = Date.now() + 10_000.5;
    await fenced.json({ method: 'POST', url, body: {} });
    await fenced.close();
    await endpoint.close();
  });

  it('lets the answer of a write that landed be read after the deadline passed', async () => {
    const endpoint = new KcpEndpoint({ serverOrigin: origin, allowH2: false });
    const fenced = endpoint.fenced({ writeFence: () => undefined, writeDeadline: () => Date.now() + 100 });
    const url = `${origin}/clusters/root/api/v1/namespaces/default/configmaps/slow-body`;
    const response = await fenced.fetch(new Request(url, { method: 'PUT', body: '{}' }));
    // The server has answered, so the write landed; its body arrives 300 ms on, past the deadline.
    expect(await response.json()).toEqual({ metadata: {} });
    await fenced.close();
    await endpoint.close();
  });
});

describe('KcpEndpoint protocols', () => {
  let server: Http2SecureServer;
  let origin = '';
  let ca = '';
  const seen: string[] = [];

  beforeAll(async () => {
    const authority = await TestCA.create('endpoint-test-ca');
    const serving = await authority.serverCert('127.0.0.1');
    ca = authority.certPem;
    server = createSecureServer({ ...serving, allowHTTP1: true }, (req, res) => {
      seen.push(`${req.method} HTTP/${req.httpVersion}`);
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end('{"metadata":{}}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => server.close());

  it('sends reads and body-less requests over HTTP/2 and requests with a body over HTTP/1.1', async () => {
    const endpoint = new KcpEndpoint({ serverOrigin: origin, ca });
    const url = `${origin}/clusters/root/api/v1/namespaces/default/configmaps`;
    await endpoint.json({ method: 'GET', url });
    await endpoint.json({ method: 'POST', url, body: { metadata: { name: 'a' } } });
    await endpoint.json({ method: 'PATCH', url: `${url}/a`, body: {}, contentType: 'application/merge-patch+json' });
    await endpoint.json({ method: 'DELETE', url: `${url}/a` });
    await endpoint.json({ method: 'DELETE', url: `${url}/a`, body: { preconditions: { uid: 'u' } } });
    await endpoint.fetch(new Request(url, { method: 'PUT', body: '{}' }));
    await endpoint.fetch(new Request(url));
    expect(seen).toEqual([
      'GET HTTP/2.0',
      'POST HTTP/1.1',
      'PATCH HTTP/1.1',
      'DELETE HTTP/2.0',
      'DELETE HTTP/1.1',
      'PUT HTTP/1.1',
      'GET HTTP/2.0',
    ]);
    await endpoint.close();
  });
});

describe('KcpEndpoint TLS', () => {
  it('verifies the server with the given CA and presents the client certificate, on reads, writes and a fenced endpoint alike', async () => {
    const authority = await TestCA.create('endpoint-tls-ca');
    const other = await TestCA.create('endpoint-tls-other-ca');
    const client = await authority.clientCert('broker-user');
    const users: string[] = [];
    const server = createSecureServer(
      {
        ...(await authority.serverCert('127.0.0.1')),
        allowHTTP1: true,
        ca: authority.certPem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        users.push(`${req.method} ${(req.socket as TLSSocket).getPeerCertificate().subject.CN}`);
        req.resume();
        req.on('end', () => res.end('{"metadata":{}}'));
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const url = `${origin}/clusters/root/api/v1/namespaces/default/configmaps`;
    try {
      const endpoint = new KcpEndpoint({ serverOrigin: origin, ca: authority.certPem, ...client });
      const fenced = endpoint.fenced({ writeFence: () => undefined });
      await endpoint.json({ method: 'GET', url });
      await fenced.json({ method: 'POST', url, body: {} });
      await endpoint.json({ method: 'PUT', url: `${url}/a`, body: {} });
      expect(users).toEqual(['GET broker-user', 'POST broker-user', 'PUT broker-user']);
      await fenced.close();
      await endpoint.close();
      // A server its CA did not sign is refused, on either pool; so is a client without a certificate.
      const wrongCa = new KcpEndpoint({ serverOrigin: origin, ca: other.certPem, ...client });
      await expect(wrongCa.json({ method: 'GET', url })).rejects.toThrow();
      await expect(wrongCa.fenced({}).json({ method: 'POST', url, body: {} })).rejects.toThrow();
      await wrongCa.close();
      const anonymous = new KcpEndpoint({ serverOrigin: origin, ca: authority.certPem });
      await expect(anonymous.json({ method: 'POST', url, body: {} })).rejects.toThrow();
      await anonymous.close();
      expect(users).toHaveLength(3);
    } finally {
      server.close();
    }
  });
});

describe('one undici in the process', () => {
  // A child process: the test runner's own process may have loaded Node's bundled copy already.
  const probe = (install: boolean): string => {
    const script = `
      import { KcpEndpoint } from ${JSON.stringify(new URL('./endpoint.ts', import.meta.url).href)};
      import { installFetchGlobals } from ${JSON.stringify(new URL('./undici-parts.ts', import.meta.url).href)};
      import { createKcpClient } from ${JSON.stringify(new URL('./typed-client.ts', import.meta.url).href)};
      ${install ? 'installFetchGlobals();' : ''}
      const endpoint = new KcpEndpoint({ serverOrigin: 'https://127.0.0.1:1' });
      await createKcpClient(endpoint, endpoint.workspaceUrl('root')).GET('/api/v1/namespaces').catch(() => undefined);
      await endpoint.close();
      console.log(process.moduleLoadList.some((m) => m.includes('internal/deps/undici')) ? 'bundled' : 'one');
    `;
    return execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }).trim();
  };

  it("sends openapi-fetch's requests without loading Node's bundled undici once installFetchGlobals ran", () => {
    expect(probe(false)).toBe('bundled'); // what it saves: openapi-fetch builds Request and Headers from the globals
    expect(probe(true)).toBe('one');
  });
});
