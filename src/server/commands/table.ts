import { after } from '../../core/awaitable.ts';
import { CTL_QUERIES, type CtlQuery, type Engine } from '../../core/engine.ts';
import { SessiondError, syntaxError } from '../../errors.ts';
import { mapReply, simpleString, type Reply } from '../../protocol/resp/encoder.ts';
import { int64Arg, intArg, options } from './args.ts';

/** What a command may know of the server and the client that sent it. */
export interface CommandContext {
  engine: Engine;
  /** INFO's text: version, uptime, store, sessions, connections, ops. */
  info(): Promise<string>;
}

/** One command of PROTOCOL.md, defined once and served by both RESP and HTTP. */
export interface CommandSpec {
  /** Upper-case name. */
  name: string;
  /** Arguments after the name: at least `min`, at most `max`. */
  min: number;
  max: number;
  /** Needs the admin right (EMPTY). */
  admin?: boolean;
  /** One line for `sessiond --help`, the HTTP index and the docs. */
  summary: string;
  /** The reply: a value when the engine answered at once (the memory store's hot path). */
  run(context: CommandContext, args: readonly string[]): Promise<Reply> | Reply;
}

const MANY = Number.POSITIVE_INFINITY;
/** Booleans are integers on the wire (PROTOCOL.md). */
const flag = (value: boolean): number => (value ? 1 : 0);
/** The reply 1, as a function made once rather than per command. */
const one = (): number => 1;

function createOptions(args: readonly string[]) {
  const o = options(args, ['CLASS', 'DATA', 'TIMEOUT']);
  return {
    ...(o.CLASS !== undefined && { cls: o.CLASS }),
    ...(o.DATA !== undefined && { data: o.DATA }),
    ...(o.TIMEOUT !== undefined && { timeout: intArg(o.TIMEOUT, 'TIMEOUT') }),
  };
}

function pairs(args: readonly string[]): Array<[string, string]> {
  if (args.length % 2 !== 0) throw syntaxError("wrong number of arguments for 'set' command");
  const out: Array<[string, string]> = [];
  for (let i = 0; i < args.length; i += 2) out.push([args[i]!, args[i + 1]!]);
  return out;
}

const COMMANDS: CommandSpec[] = [
  {
    name: 'PING',
    min: 0,
    max: 1,
    summary: 'PING [msg]: PONG, or msg',
    run: (_, [msg]) => (msg === undefined ? simpleString('PONG') : msg),
  },
  {
    name: 'INFO',
    min: 0,
    max: 1,
    summary: 'INFO: version, uptime, store, sessions, connections, ops',
    run: (ctx) => ctx.info(),
  },
  {
    name: 'CREATE',
    min: 1,
    max: 7,
    summary: 'CREATE sid [CLASS c] [DATA d] [TIMEOUT s]: 1 created, 0 exists',
    run: async ({ engine }, [sid, ...rest]) => flag(await engine.create(sid!, createOptions(rest))),
  },
  {
    name: 'UNIQ',
    min: 1,
    max: 7,
    summary: 'UNIQ length [CLASS c] [DATA d] [TIMEOUT s]: a new unguessable id, created',
    run: ({ engine }, [length, ...rest]) =>
      engine.uniq(intArg(length!, 'length'), createOptions(rest)),
  },
  {
    name: 'RANDSTR',
    min: 1,
    max: 1,
    summary: 'RANDSTR length: a random alphanumeric string (1..4096)',
    run: ({ engine }, [length]) => engine.randstr(intArg(length!, 'length')),
  },
  {
    name: 'DESTROY',
    min: 1,
    max: 1,
    summary: 'DESTROY sid: 1 destroyed, 0 no such session',
    run: async ({ engine }, [sid]) => flag(await engine.destroy(sid!)),
  },
  {
    name: 'SET',
    min: 3,
    max: MANY,
    summary: 'SET sid name value [name value ...]: 1',
    run: ({ engine }, args) =>
      after(
        engine.setManyImmediate(
          args[0]!,
          args.length === 3 ? [[args[1]!, args[2]!]] : pairs(args.slice(1)),
        ),
        one,
      ),
  },
  {
    name: 'GET',
    min: 2,
    max: 3,
    summary: 'GET sid name [default]: the value, else default, else nil',
    run: ({ engine }, [sid, name, fallback]) => engine.getImmediate(sid!, name!, fallback ?? null),
  },
  {
    name: 'GETALL',
    min: 1,
    max: 1,
    summary: 'GETALL sid: name, value, ... (a map under RESP3)',
    run: ({ engine }, [sid]) =>
      after(engine.loadImmediate(sid!), (session) => {
        if (!session) throw new SessiondError('NOSESSION', 'no such session');
        return mapReply([...session.vars]);
      }),
  },
  {
    name: 'UNSET',
    min: 2,
    max: MANY,
    summary: 'UNSET sid name [name ...]: variables removed',
    run: ({ engine }, [sid, ...names]) => engine.unset(sid!, names),
  },
  {
    name: 'INC',
    min: 2,
    max: 3,
    summary: 'INC sid name [by]: the new value (missing counts as 0)',
    run: ({ engine }, [sid, name, by]) =>
      engine.incImmediate(sid!, name!, by === undefined ? 1n : int64Arg(by, 'increment')),
  },
  {
    name: 'SETDATA',
    min: 2,
    max: 2,
    summary: 'SETDATA sid data: 1 (creates the session if absent)',
    run: async ({ engine }, [sid, data]) => {
      await engine.setData(sid!, data!);
      return 1;
    },
  },
  {
    name: 'GETDATA',
    min: 1,
    max: 1,
    summary: 'GETDATA sid: the data blob ("" if never set)',
    run: ({ engine }, [sid]) => engine.getDataImmediate(sid!),
  },
  {
    name: 'FIND',
    min: 2,
    max: 2,
    summary:
      'FIND name value: ids of sessions whose variable equals value (LIMIT past maxResultIds)',
    run: ({ engine }, [name, value]) => engine.find(name!, value!),
  },
  {
    name: 'LISTVAR',
    min: 1,
    max: 1,
    summary:
      'LISTVAR name: id, value, ... for sessions that have the variable (a map under RESP3; LIMIT past maxResultIds)',
    run: async ({ engine }, [name]) => mapReply(await engine.listVar(name!)),
  },
  {
    name: 'LIST',
    min: 0,
    max: 6,
    summary:
      'LIST [CURSOR c] [COUNT n] [CLASS c]: all ids (LIMIT past maxResultIds), or [next-cursor, [ids]]',
    run: async ({ engine }, args) => {
      const o = options(args, ['CURSOR', 'COUNT', 'CLASS']);
      if (o.CURSOR === undefined) {
        if (o.COUNT !== undefined) throw syntaxError('COUNT needs CURSOR');
        return engine.list(o.CLASS);
      }
      const page = await engine.scan(o.CURSOR, {
        ...(o.COUNT !== undefined && { count: intArg(o.COUNT, 'COUNT') }),
        ...(o.CLASS !== undefined && { cls: o.CLASS }),
      });
      return [page.cursor, page.ids];
    },
  },
  {
    name: 'COUNT',
    min: 0,
    max: 2,
    summary: 'COUNT [CLASS c]: live sessions',
    run: ({ engine }, args) => engine.count(options(args, ['CLASS']).CLASS),
  },
  {
    name: 'TIMEOUT',
    min: 1,
    max: 2,
    summary: 'TIMEOUT sid [seconds]: the idle timeout (0 never; negative restores the default)',
    run: ({ engine }, [sid, seconds]) =>
      engine.timeout(sid!, seconds === undefined ? undefined : intArg(seconds, 'seconds')),
  },
  {
    name: 'LOCK',
    min: 1,
    max: 5,
    summary: 'LOCK sid [LEASE ms] [WAIT ms]: a fencing key; LOCKED if still held after WAIT',
    run: async ({ engine }, [sid, ...rest]) => {
      const o = options(rest, ['LEASE', 'WAIT']);
      const result = await engine.lock(sid!, {
        ...(o.LEASE !== undefined && { leaseMs: intArg(o.LEASE, 'LEASE') }),
        ...(o.WAIT !== undefined && { waitMs: intArg(o.WAIT, 'WAIT') }),
      });
      if (!result.acquired)
        throw new SessiondError('LOCKED', 'session is locked by another holder');
      return result.key;
    },
  },
  {
    name: 'UNLOCK',
    min: 2,
    max: 2,
    summary: 'UNLOCK sid key: 1 released, 0 not held with that key',
    run: async ({ engine }, [sid, key]) => flag(await engine.unlock(sid!, intArg(key!, 'key'))),
  },
  {
    name: 'PLUGIN',
    min: 2,
    max: 3,
    summary: "PLUGIN sid val [param]: the loaded plugin's escape function",
    run: ({ engine }, [sid, val, param]) => engine.plugin(sid!, val!, param),
  },
  {
    name: 'CALL',
    min: 1,
    max: MANY,
    summary: 'CALL fn [arg ...]: a plugin function',
    run: ({ engine }, [fn, ...args]) => engine.call(fn!, args),
  },
  {
    name: 'CTL',
    min: 2,
    max: 2,
    summary: 'CTL sid EXIST|TTL|AGE|TLA|CTIME|TOUCH|NOW: an integer',
    run: ({ engine }, [sid, which]) => {
      const query = which!.toUpperCase();
      if (!(CTL_QUERIES as readonly string[]).includes(query))
        throw syntaxError(`unknown CTL query '${which!}'`);
      return engine.ctl(sid!, query as CtlQuery);
    },
  },
  {
    name: 'TOUCH',
    min: 1,
    max: 1,
    summary: 'TOUCH sid: 1 refreshed, 0 no such session',
    run: async ({ engine }, [sid]) => flag(await engine.touch(sid!)),
  },
  {
    name: 'EXPIRE',
    min: 2,
    max: 2,
    summary: 'EXPIRE sid seconds: 1 absolute expiry set, 0 no such session',
    run: async ({ engine }, [sid, seconds]) =>
      flag(await engine.expire(sid!, intArg(seconds!, 'seconds'))),
  },
  {
    name: 'PERSIST',
    min: 1,
    max: 1,
    summary: 'PERSIST sid: 1 absolute expiry removed, 0 no such session',
    run: async ({ engine }, [sid]) => flag(await engine.persist(sid!)),
  },
  {
    name: 'REGENERATE',
    min: 1,
    max: 3,
    summary: 'REGENERATE sid [GRACE seconds]: the new id; the old one gone or read-only for GRACE',
    run: ({ engine }, [sid, ...rest]) => {
      const o = options(rest, ['GRACE']);
      return engine.regenerate(
        sid!,
        o.GRACE === undefined ? {} : { graceSeconds: intArg(o.GRACE, 'GRACE') },
      );
    },
  },
  {
    name: 'SETUSER',
    min: 2,
    max: 2,
    summary: 'SETUSER sid user: 1 ("" clears the user)',
    run: async ({ engine }, [sid, user]) => {
      await engine.setUser(sid!, user!);
      return 1;
    },
  },
  {
    name: 'GETUSER',
    min: 1,
    max: 1,
    summary: "GETUSER sid: the session's user, or nil",
    run: ({ engine }, [sid]) => engine.getUser(sid!),
  },
  {
    name: 'USERSESSIONS',
    min: 1,
    max: 1,
    summary: "USERSESSIONS user: ids of the user's sessions (LIMIT past maxResultIds)",
    run: ({ engine }, [user]) => engine.userSessions(user!),
  },
  {
    name: 'DESTROYUSER',
    min: 1,
    max: 3,
    summary: 'DESTROYUSER user [EXCEPT sid]: sessions destroyed',
    run: ({ engine }, [user, ...rest]) =>
      engine.destroyUser(user!, options(rest, ['EXCEPT']).EXCEPT ?? null),
  },
  {
    name: 'GC',
    min: 0,
    max: 0,
    summary: 'GC: expired sessions removed now',
    run: ({ engine }) => engine.gc(),
  },
  {
    name: 'EMPTY',
    min: 0,
    max: 0,
    admin: true,
    summary: 'EMPTY: every session removed (admin right)',
    run: ({ engine }) => engine.empty(),
  },
];

/** The command table, by upper-case name. */
export const COMMAND_TABLE: ReadonlyMap<string, CommandSpec> = new Map(
  COMMANDS.map((c) => [c.name, c]),
);

/**
 * A command name in upper case, ASCII letters only. Unicode casing turns the byte ß into "SS",
 * the one Latin-1 byte that uppercases into ASCII: such a name is left as it came, so
 * `USERSE\xDFIONS` is unknown (defends against aliases slipping past name-based filters).
 */
export function commandName(raw: string): string {
  const upper = raw.toUpperCase();
  return upper.length === raw.length ? upper : raw;
}

/**
 * Looks up and runs one command from its name and arguments.
 * @throws ERR for an unknown command or a wrong number of arguments; DENIED without the admin
 * right; and whatever the command raises
 */
export function runCommand(
  context: CommandContext & { admin: boolean },
  name: string,
  args: readonly string[],
): Promise<Reply> | Reply {
  const spec = COMMAND_TABLE.get(name) ?? COMMAND_TABLE.get(commandName(name));
  if (!spec) throw syntaxError(`unknown command '${name}'`);
  return runSpec(context, spec, args);
}

/**
 * Runs a command already looked up in {@link COMMAND_TABLE}.
 * @throws ERR for a wrong number of arguments; DENIED without the admin right; and whatever the
 * command raises
 */
export function runSpec(
  context: CommandContext & { admin: boolean },
  spec: CommandSpec,
  args: readonly string[],
): Promise<Reply> | Reply {
  if (args.length < spec.min || args.length > spec.max) {
    throw syntaxError(`wrong number of arguments for '${spec.name.toLowerCase()}' command`);
  }
  if (spec.admin && !context.admin)
    throw new SessiondError('DENIED', `${spec.name} needs the admin right`);
  return spec.run(context, args);
}
