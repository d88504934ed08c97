import type { SessionEvent } from '../core/events.ts';

/** Counters that INFO, the metrics and the admin page report, shared by both ports. */
export class ServerStats {
  readonly startedAt = Date.now();
  commands = 0;
  connections = 0;
  totalConnections = 0;
  rejectedConnections = 0;
  protocolErrors = 0;
  /** AUTH and HTTP credentials refused (WRONGPASS): a rising count is a password being guessed. */
  authFailures = 0;
  socketWrites = 0;
  outputBufferDisconnects = 0;
  /** Commands that failed unexpectedly (a failing store in practice; a bug otherwise). */
  storeErrors = 0;
  /**
   * Session events the engine reported. With a shared store these are every server's events
   * (the engine hears them all), so each server reports the store's totals.
   */
  sessionsCreated = 0;
  /** DESTROY, DESTROYUSER and EMPTY, one per session removed. */
  sessionsDestroyed = 0;
  sessionsExpired = 0;
  sessionsRegenerated = 0;

  /** Counts one engine event. */
  countEvent(event: SessionEvent): void {
    switch (event.type) {
      case 'created':
        this.sessionsCreated++;
        break;
      case 'destroyed':
        this.sessionsDestroyed++;
        break;
      case 'empty':
        this.sessionsDestroyed += event.count;
        break;
      case 'expired':
        this.sessionsExpired++;
        break;
      case 'regenerated':
        this.sessionsRegenerated++;
        break;
      // A gc event's count repeats the expired events the sweep already sent, one per session.
    }
  }
}
