import { EventEmitter, once } from 'node:events';
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';

/** Resolves once `condition` holds, checked at once and on every `event` of `emitter`. */
export function when(emitter: EventEmitter, event: string, condition: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (!condition()) return;
      emitter.off(event, check);
      resolve();
    };
    emitter.on(event, check);
    check();
  });
}

/** A TCP server that echoes what it receives and records it: the target behind the proxy. */
export class EchoTarget extends EventEmitter {
  readonly server: Server;
  connections = 0;
  /** Everything received, over all connections. */
  received = '';
  /** Connections that ended with an error (e.g. ECONNRESET) rather than a clean close. */
  failed = 0;
  closed = 0;
  private readonly sockets = new Set<Socket>();

  private constructor() {
    super();
    this.server = createServer({ allowHalfOpen: false }, (socket) => {
      this.connections += 1;
      this.sockets.add(socket);
      socket.on('data', (data: Buffer) => {
        this.received += data.toString('latin1');
        socket.write(data);
        this.emit('change');
      });
      socket.on('error', () => {
        this.failed += 1;
      });
      socket.on('close', () => {
        this.closed += 1;
        this.sockets.delete(socket);
        this.emit('change');
      });
      this.emit('change');
    });
  }

  static async start(): Promise<EchoTarget> {
    const target = new EchoTarget();
    target.server.listen(0, '127.0.0.1');
    await once(target.server, 'listening');
    return target;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  until(condition: (target: this) => boolean): Promise<void> {
    return when(this, 'change', () => condition(this));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    await once(this.server, 'close');
  }
}

/** A client connection that records what it receives and how it ended. */
export class TestClient extends EventEmitter {
  received = '';
  /** 'reset' when the connection ended in ECONNRESET (or EPIPE), 'closed' on a clean close. */
  outcome: 'open' | 'closed' | 'reset' = 'open';
  errorCode: string | undefined;
  readonly chunks: Array<{ readonly at: number; readonly size: number }> = [];

  private constructor(readonly socket: Socket) {
    super();
    socket.on('data', (data: Buffer) => {
      this.received += data.toString('latin1');
      this.chunks.push({ at: Date.now(), size: data.length });
      this.emit('change');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.errorCode = error.code;
    });
    socket.on('close', () => {
      this.outcome = this.errorCode === 'ECONNRESET' || this.errorCode === 'EPIPE' ? 'reset' : 'closed';
      this.emit('change');
    });
  }

  static async connect(port: number): Promise<TestClient> {
    const socket = connect(port, '127.0.0.1');
    const client = new TestClient(socket);
    await new Promise((resolve) => {
      socket.once('connect', resolve);
      socket.once('close', resolve);
    });
    return client;
  }

  write(text: string | Buffer): void {
    this.socket.write(text);
  }

  until(condition: (client: this) => boolean): Promise<void> {
    return when(this, 'change', () => condition(this));
  }

  close(): void {
    this.socket.destroy();
  }
}
