import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import type { DecoderLimits } from '../protocol/resp/decoder.ts';
import { RespConnection, type ConnectionShared } from './resp-connection.ts';

export interface RespServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Key and certificate: the port speaks TLS only. */
  tls?: TlsOptions;
  /** Connections at once; one more is told so and closed (Redis's maxclients). */
  maxClients: number;
  /** Bytes of unsent replies after which a client is disconnected. */
  maxOutputBuffer: number;
  decoderLimits: Partial<DecoderLimits>;
}

export const DEFAULT_MAX_CLIENTS = 10_000;
export const DEFAULT_MAX_OUTPUT_BUFFER = 64 * 1024 * 1024;

/** The RESP port: msession's daemon, spoken in the Redis protocol. */
export class RespServer {
  #server: Server;
  #connections = new Set<RespConnection>();
  #shared: ConnectionShared;
  #options: RespServerOptions;

  constructor(
    options: RespServerOptions,
    shared: Omit<ConnectionShared, 'decoderLimits' | 'maxOutputBuffer'>,
  ) {
    this.#options = options;
    this.#shared = {
      ...shared,
      decoderLimits: options.decoderLimits,
      maxOutputBuffer: options.maxOutputBuffer,
    };
    const accept = (socket: Socket) => this.#accept(socket);
    this.#server = options.tls ? createTlsServer(options.tls, accept) : createTcpServer(accept);
  }

  /** Starts listening; resolves with the address (the port, when 0 was asked). */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.port, this.#options.host, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting, lets every connection finish its command in flight, then closes them. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await Promise.all([...this.#connections].map((connection) => connection.shutdown()));
    await closed;
  }

  #accept(socket: Socket): void {
    const stats = this.#shared.stats;
    if (this.#connections.size >= this.#options.maxClients) {
      stats.rejectedConnections++;
      socket.on('error', () => socket.destroy());
      socket.end('-ERR max number of clients reached\r\n');
      return;
    }
    stats.connections++;
    stats.totalConnections++;
    const connection = new RespConnection(socket, this.#shared);
    this.#connections.add(connection);
    socket.once('close', () => {
      stats.connections--;
      this.#connections.delete(connection);
    });
  }
}
