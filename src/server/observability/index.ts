/** Metrics, logs and the recent history that the admin page charts. */
export { Metrics, type MetricsOptions } from './metrics.ts';
export {
  CommandLatency,
  LATENCY_BUCKETS,
  LatencySeries,
  UNKNOWN_COMMAND,
} from './command-latency.ts';
export {
  createLogger,
  LOG_LEVELS,
  SESSION_ID_KEYS,
  type Logger,
  type LoggerOptions,
  type LogLevel,
} from './logger.ts';
export { TimeSeries, type Point } from './time-series.ts';
export {
  ActivityHistory,
  type ActivityHistoryOptions,
  type ActivitySample,
} from './activity-history.ts';
