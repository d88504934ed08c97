export {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_CONNECTIONS,
  HttpServer,
  type HttpServerOptions,
} from './http-server.ts';
export { HttpError, STATUS_BY_CODE, statusOf } from './http-error.ts';
export {
  argFromJson,
  bytesToJson,
  replyToJson,
  type Base64Bytes,
  type Json,
} from './json-codec.ts';
export { EventStream, type EventStreamOptions } from './event-stream.ts';
