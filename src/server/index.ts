/** The sessiond server: the engine behind RESP and HTTP/JSON ports, built from one command table. */
export { SessiondServer, VERSION, type ListenOptions, type ServerOptions } from './server.ts';
export {
  COMMAND_TABLE,
  runCommand,
  type CommandContext,
  type CommandSpec,
} from './commands/table.ts';
export { Auth, type AuthOptions, type Rights } from './auth.ts';
export { loadPlugin, type PluginApi } from './plugin-loader.ts';
export { globMatch } from './pubsub.ts';
export * from './observability/index.ts';
