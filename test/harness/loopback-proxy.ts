import { createServer, connect, type Server, type Socket } from 'node:net';

type Connection = { client: Socket; upstream: Socket };

/**
 * A TCP relay on 127.0.0.1 in front of a real kcp, for network faults a kcp cannot be asked
 * for: it drops every open connection, silently stops delivering on them (a stall), or turns
 * new connections away. TLS passes through untouched, so clients talk to kcp itself.
 */
export class LoopbackProxy {
  readonly #targetPort: number;
  readonly #connections = new Set<Connection>();
  #server: Server | undefined;
  /** While true, new connections are closed as soon as they arrive. */
  refuse = false;
  port = 0;

  constructor(options: { targetPort: number }) {
    this.#targetPort = options.targetPort;
  }

  get origin(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  get openConnections(): number {
    return this.#connections.size;
  }

  async start(): Promise<void> {
    const server = createServer((client) => this.#relay(client));
    this.#server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('proxy has no port');
    this.port = address.port;
  }

  /** Resets every open connection, as a restarted load balancer would. */
  dropConnections(): void {
    for (const c of this.#connections) {
      c.client.destroy();
      c.upstream.destroy();
    }
    this.#connections.clear();
  }

  /** Open connections keep their sockets but deliver nothing more to the client; new ones work. */
  stallConnections(): void {
    for (const c of this.#connections) {
      c.upstream.unpipe(c.client);
      c.upstream.pause();
    }
  }

  async stop(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  #relay(client: Socket): void {
    if (this.refuse) {
      client.destroy();
      return;
    }
    const upstream = connect({ host: '127.0.0.1', port: this.#targetPort });
    const connection: Connection = { client, upstream };
    this.#connections.add(connection);
    const close = (): void => {
      this.#connections.delete(connection);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
