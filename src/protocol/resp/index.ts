/**
 * The server side of RESP (https://github.com/redis/redis-specifications/blob/master/protocol/RESP3.md):
 * decoding requests (multibulk and inline) and encoding replies (RESP2 and RESP3).
 */
export {
  RequestDecoder,
  DEFAULT_DECODER_LIMITS,
  type Command,
  type DecoderLimits,
} from './decoder.ts';
export { ProtocolError, type ProtocolErrorReason } from './protocol-error.ts';
export {
  ReplyWriter,
  encodeReply,
  simpleString,
  errorReply,
  mapReply,
  pushReply,
  doubleReply,
  NULL_ARRAY,
  type Reply,
  type RespVersion,
  type SimpleStringReply,
  type ErrorReply,
  type MapReply,
  type PushReply,
  type DoubleReply,
  type NullArrayReply,
} from './encoder.ts';
