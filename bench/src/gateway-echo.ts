/**
 * The request both gateway benchmarks send through `peak gateway` with every check on: the
 * HTTP → RPC echo (`POST /echo`, body `{ n, s }`), signed with the app's key (its own nonce
 * and timestamp each time).
 */
import { signRequest } from 'peakware/gateway';

const JSON_TYPE = { 'content-type': 'application/json' };

/** A freshly signed echo request carrying `n`. */
export function signedEcho(
  n: number,
  key: { id: string; secret: string },
): { body: string; headers: Record<string, string> } {
  const body = `{"n":${n},"s":"hello"}`;
  const headers = {
    ...JSON_TYPE,
    ...signRequest({
      method: 'POST',
      url: '/echo',
      body,
      headers: JSON_TYPE,
      keyId: key.id,
      secret: key.secret,
    }),
  };
  return { body, headers };
}
