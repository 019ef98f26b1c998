/**
 * Apps and their credentials (`peak app ...`): create an app with its grants, change the
 * grants, rotate (a new credential, the old ones working for an overlap), revoke, list;
 * and the key apps' signed identities are signed with.
 * Every call but `list` needs the admin role; a credential is in the answer that issued it
 * only.
 */
import type { ControlPlaneClient } from '../core/control-plane-client.js';
import type { AppCredentialView, AppView, IssuedCredential } from '../server/app-credentials.js';

export type { AppCredentialView, AppView, IssuedCredential };

/** App management of the control plane. */
export class AppsAdmin {
  readonly #http: ControlPlaneClient;

  constructor(http: ControlPlaneClient) {
    this.#http = http;
  }

  /**
   * Creates app `name` with grants `can` (`register:shop.order`, `produce:orders`,
   * `consume:orders/points`, `read-config:shop/*`, `telemetry`, `guard-token`) and returns
   * its first credential, shown this once.
   */
  create(name: string, can: readonly string[]): Promise<IssuedCredential & { can: string[] }> {
    return this.#http.post('/api/v1/apps', { name, can });
  }

  /** Every app with its grants and credentials (ids and hints, never secrets). */
  async list(): Promise<AppView[]> {
    return (await this.#http.get<{ apps: AppView[] }>('/api/v1/apps')).apps;
  }

  /** Replaces an app's grants. */
  setScopes(name: string, can: readonly string[]): Promise<{ app: string; can: string[] }> {
    return this.#http.put(`/api/v1/apps/${encodeURIComponent(name)}/scopes`, { can });
  }

  /**
   * Issues a new credential (shown once); the app's other credentials keep working for
   * `overlapSeconds` (default 3600; 0 ends them now).
   */
  rotate(
    name: string,
    options: { overlapSeconds?: number } = {},
  ): Promise<IssuedCredential & { previousExpireAt: string }> {
    return this.#http.post(`/api/v1/apps/${encodeURIComponent(name)}/rotate`, options);
  }

  /**
   * Signs apps' identities with a new key from now on; the old key stays published until
   * the identities it signed have expired.
   */
  rotateSigningKey(): Promise<{ kid: string }> {
    return this.#http.post('/api/v1/identity/keys/rotate', {});
  }

  /** Revokes one credential (by id) or all of an app's, at once. */
  revoke(name: string, credentialId?: string): Promise<{ app: string; revoked: number }> {
    return this.#http.post(
      `/api/v1/apps/${encodeURIComponent(name)}/revoke`,
      credentialId === undefined ? {} : { credentialId },
    );
  }
}
