/**
 * Signed app identities (`identity-issuer.ts`): an app trades its credential for a
 * short-lived identity its RPC calls carry; providers verify identities offline with the
 * public keys published here (no credential needed to read them: they are public).
 */
import { Type } from '@sinclair/typebox';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import { callerApp, callerName } from '../access.js';
import type { ApiModule } from '../http-api.js';
import { type IdentityIssuer, MAX_IDENTITY_TTL_MS } from '../identity-issuer.js';

/** The identity routes of one node's issuer. */
export function identityRoutes(issuer: IdentityIssuer): ApiModule {
  return (app, ctx) => {
    app.get(
      '/api/v1/identity/keys',
      {
        config: { auth: 'public' },
        schema: {
          summary:
            'The public keys (JWKS, Ed25519) identities are signed with, for providers to verify them offline',
        },
      },
      async (_request, reply) => {
        void reply.header('cache-control', 'public, max-age=60');
        return issuer.jwks();
      },
    );

    app.post(
      '/api/v1/identity',
      {
        config: { auth: 'read' },
        schema: {
          summary: "The calling app's signed identity (a JWT, Ed25519), for its RPC calls",
          body: Type.Object({
            ttlSeconds: Type.Optional(
              Type.Integer({
                minimum: 30,
                maximum: MAX_IDENTITY_TTL_MS / 1000,
                description: 'how long it is valid (default and most: 600)',
              }),
            ),
          }),
        },
      },
      async (request) => {
        const app = callerApp(request);
        if (app === undefined) {
          throw new PeakError(
            ErrorCodes.FORBIDDEN,
            `identities are issued to apps, and ${callerName(request)} is an operator token: call with the app's credential`,
          );
        }
        const ttl = request.body.ttlSeconds;
        return issuer.issue(app, ttl === undefined ? undefined : ttl * 1000);
      },
    );

    app.post(
      '/api/v1/identity/keys/rotate',
      {
        config: { auth: 'admin' },
        schema: {
          summary:
            'Sign identities with a new key from now on; the old key stays published until what it signed has expired',
          body: Type.Object({}),
        },
      },
      async (request) => {
        const rotated = await issuer.rotate();
        ctx.logger.warn(
          { kid: rotated.kid, by: callerName(request) },
          'identity signing key rotated',
        );
        return rotated;
      },
    );
  };
}
