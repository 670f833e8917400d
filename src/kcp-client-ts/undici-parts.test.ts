import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, fetch, installFetchGlobals, request } from './undici-parts.ts';

// undici's files loaded one by one: should a release move one, these fail before anything ships.
describe("undici's parts, loaded without its index", () => {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, body, auth: req.headers.authorization ?? null }));
    });
  });
  let origin = '';
  const agent = new Agent({ keepAliveTimeout: 1_000 });

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await agent.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('request: sends method, path with query, headers and body through the given dispatcher', async () => {
    const response = await request(`${origin}/clusters/a/api?watch=true`, {
      dispatcher: agent,
      method: 'POST',
      headers: { authorization: 'Bearer t' },
      body: '{"x":1}',
    });
    expect(response.statusCode).toBe(200);
    expect(await response.body.json()).toEqual({ method: 'POST', url: '/clusters/a/api?watch=true', body: '{"x":1}', auth: 'Bearer t' });
  });

  it('fetch, and the globals openapi-fetch builds requests from, are this undici', async () => {
    installFetchGlobals();
    const headers = new Headers({ authorization: 'Bearer g' });
    const built = new Request(`${origin}/x`, { method: 'PUT', headers, body: 'b' });
    const response = await fetch(built.url, {
      method: built.method,
      headers: Object.fromEntries(built.headers),
      body: 'b',
      dispatcher: agent,
    });
    expect(response).toBeInstanceOf(Response);
    expect(await response.json()).toEqual({ method: 'PUT', url: '/x', body: 'b', auth: 'Bearer g' });
    expect(globalThis.fetch).toBe(fetch);
  });
});
