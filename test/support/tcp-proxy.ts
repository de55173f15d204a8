/**
 * A TCP proxy on 127.0.0.1 that a test can cut and restore: the way to make a
 * shared database (or Redis) unreachable for the processes under test without
 * touching the server itself.
 */
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';

export class TcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  /** Connections accepted so far (a reconnecting client opens new ones). */
  accepted = 0;

  private boundPort = 0;

  private constructor(
    readonly targetHost: string,
    readonly targetPort: number,
  ) {}

  /** Starts forwarding `127.0.0.1:<port>` (a free port unless given) to the target. */
  static async start(targetHost: string, targetPort: number, port = 0): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetHost, targetPort);
    proxy.boundPort = await proxy.listen(port);
    return proxy;
  }

  /** The port it listens on, the same across `cut` and `restore`. */
  get port(): number {
    return this.boundPort;
  }

  get listening(): boolean {
    return this.server !== null;
  }

  /**
   * The target becomes unreachable: new connections are refused (nothing
   * listens on the port) and every open one is reset, in both directions.
   */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Accepts connections again, on the same port. */
  async restore(): Promise<void> {
    if (!this.server) await this.listen(this.port);
  }

  async close(): Promise<void> {
    await this.cut();
  }

  private listen(port: number): Promise<number> {
    const server = createServer((client) => this.forward(client));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        this.server = server;
        resolve((server.address() as { port: number }).port);
      });
    });
  }

  private forward(client: Socket): void {
    this.accepted++;
    const upstream = connect(this.targetPort, this.targetHost);
    for (const [socket, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('error', () => other.destroy());
      socket.on('close', () => {
        this.sockets.delete(socket);
        other.destroy();
      });
      socket.pipe(other);
    }
  }
}
