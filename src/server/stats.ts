/** Counters that INFO and the metrics report, shared by both ports. */
export class ServerStats {
  readonly startedAt = Date.now();
  commands = 0;
  connections = 0;
  totalConnections = 0;
  rejectedConnections = 0;
  protocolErrors = 0;
  socketWrites = 0;
  outputBufferDisconnects = 0;
}
