import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Engine } from '../core/engine.ts';

/**
 * What a plugin module's default export receives. A plugin registers the PLUGIN escape
 * function, CALL functions, and engine hooks; it runs with the server's rights, so only the
 * operator may name one (`--plugin PATH`), never a client.
 *
 * @example
 * // uptime.js
 * export default ({ register }) => register('uptime', () => String(process.uptime()));
 */
export interface PluginApi {
  engine: Engine;
  setEscape: Engine['plugins']['setEscape'];
  register: Engine['plugins']['register'];
  hooks: Engine['hooks'];
}

/**
 * Imports the ES module at `path` and calls its default export with the plugin API.
 * @throws Error naming the path when the module is missing, has no default function, or throws
 */
export async function loadPlugin(path: string, engine: Engine): Promise<void> {
  const url = pathToFileURL(resolve(path)).href;
  let module: { default?: unknown };
  try {
    module = (await import(url)) as { default?: unknown };
  } catch (error) {
    throw new Error(
      `plugin ${path}: cannot load: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  if (typeof module.default !== 'function')
    throw new Error(`plugin ${path}: the default export must be a function`);
  const api: PluginApi = {
    engine,
    setEscape: (fn) => engine.plugins.setEscape(fn),
    register: (name, fn) => engine.plugins.register(name, fn),
    hooks: engine.hooks,
  };
  try {
    await (module.default as (api: PluginApi) => unknown)(api);
  } catch (error) {
    throw new Error(
      `plugin ${path}: setup failed: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}
