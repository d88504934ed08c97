/**
 * sessiond/web/express: sessions for Express 5 (also fine on 4) as one middleware.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { isSessiondError } from '../../errors.ts';
import type { BeginOptions, SessionManager } from '../manager.ts';
import { attachHeldImmediate } from '../node/index.ts';

export { sessionOf } from '../node/index.ts';

/**
 * Middleware that sets `req.session` (read it typed with `sessionOf(req)`) and saves it before
 * the response leaves: res.writeHead, write and end are held until the write completes, so a
 * redirect never outruns the save. Mount it per route or router to choose the concurrency.
 * A LOCKED session reaches the error handler with status 503.
 *
 * @example
 * app.use(expressSessions(sessions));
 * app.post('/cart', expressSessions(sessions, { concurrency: 'lock' }), addToCart);
 */
export function expressSessions(
  sessions: SessionManager,
  options: BeginOptions = {},
): RequestHandler {
  const failed = (next: NextFunction, error: unknown) => {
    // Express's error handler answers with `status`: busy, not broken.
    if (isSessiondError(error, 'LOCKED')) Object.assign(error, { status: 503 });
    next(error);
  };
  return (req: Request, res: Response, next: NextFunction) => {
    let attached;
    try {
      attached = attachHeldImmediate(sessions, req, res, { ...options, url: req.originalUrl });
    } catch (error) {
      return failed(next, error);
    }
    // Loaded at once (an engine over the memory store): on to the handler without a promise.
    if (!(attached instanceof Promise)) return next();
    attached.then(
      () => next(),
      (error: unknown) => failed(next, error),
    );
  };
}
