/**
 * An in-memory ACME CA with the acme-client methods the Order and Challenge
 * reconcilers call, for their unit specs. It keeps RFC 8555's state machine
 * (an order is pending until its authorizations are valid, ready until
 * finalized, then valid with a certificate) and refuses what a real CA
 * refuses: a second finalize, a second accept. A spec moves it with
 * `validate`/`invalidate`, and records what was asked of it in `calls`.
 *
 * The e2e tests use Pebble; this is for pure reconciler logic only.
 */
import type acme from 'acme-client';
import { AcmeProblemError } from '../../src/acme/client.ts';

type Order = acme.Order;
type Authorization = acme.Authorization;
type Challenge = Authorization['challenges'][number];

/** The methods of acme-client's Client that the reconcilers use. */
export type AcmeSteps = Pick<acme.Client, 'createOrder' | 'getOrder' | 'getAuthorizations' | 'finalizeOrder' | 'getCertificate' | 'completeChallenge' | 'getChallengeKeyAuthorization'>;

const BASE = 'https://ca.test/acme';
const problem = (type: string, detail: string) => new AcmeProblemError(`${detail}`, 400, `urn:ietf:params:acme:error:${type}`);

export class FakeCa implements AcmeSteps {
  readonly calls: string[] = [];
  readonly orders = new Map<string, Order>();
  readonly authorizations = new Map<string, Authorization>();
  private count = 0;

  async createOrder(data: { identifiers: Array<{ type: string; value: string }> }): Promise<Order> {
    this.calls.push('createOrder');
    const n = ++this.count;
    const authorizations = data.identifiers.map((identifier, i) => {
      const url = `${BASE}/authz/${n}-${i}`;
      const challenges: Challenge[] = [{ type: 'http-01', url: `${url}/http-01`, token: `token-${n}-${i}`, status: 'pending' }];
      this.authorizations.set(url, { url, identifier, status: 'pending', challenges });
      return url;
    });
    const order: Order = { url: `${BASE}/order/${n}`, status: 'pending', identifiers: data.identifiers, authorizations, finalize: `${BASE}/order/${n}/finalize` };
    this.orders.set(order.url, order);
    return structuredClone(order);
  }

  async getOrder(order: Order): Promise<Order> {
    this.calls.push('getOrder');
    return structuredClone(this.order(order.url));
  }

  async getAuthorizations(order: Order): Promise<Authorization[]> {
    this.calls.push('getAuthorizations');
    return order.authorizations.map((url) => {
      const authz = this.authorizations.get(url);
      if (!authz) throw problem('malformed', `no authorization ${url}`);
      return structuredClone(authz);
    });
  }

  async finalizeOrder(order: Order): Promise<Order> {
    this.calls.push('finalizeOrder');
    const held = this.order(order.url);
    if (held.status !== 'ready') throw problem('orderNotReady', `Order's status ("${held.status}") is not acceptable for finalization`);
    if (this.slowSigning) held.status = 'processing';
    else this.finishSigning(held.url);
    return structuredClone(held);
  }

  /** A CA that signs after answering finalize: the order stays processing until `finishSigning`. */
  slowSigning = false;

  finishSigning(orderUrl: string): void {
    const held = this.order(orderUrl);
    held.status = 'valid';
    held.certificate = `${held.url}/cert`;
  }

  async getCertificate(order: Order): Promise<string> {
    this.calls.push('getCertificate');
    if (!this.order(order.url).certificate) throw problem('malformed', 'no certificate yet');
    return `-----BEGIN CERTIFICATE-----\nfake chain of ${order.url}\n-----END CERTIFICATE-----\n`;
  }

  async completeChallenge(challenge: { url: string }): Promise<Challenge> {
    this.calls.push('completeChallenge');
    const found = this.challenge(challenge.url);
    if (found.status !== 'pending') throw problem('malformed', `Cannot update challenge with status ${found.status}`);
    found.status = 'processing';
    return structuredClone(found);
  }

  async getChallengeKeyAuthorization(challenge: { token?: string }): Promise<string> {
    return `${challenge.token ?? ''}.thumbprint`;
  }

  /** The CA validated the challenge of this authorization; an order whose authorizations are all valid is ready. */
  validate(authzUrl: string): void {
    this.settle(authzUrl, 'valid');
  }

  /** The CA's validation of this authorization failed with `detail`; its order is invalid. */
  invalidate(authzUrl: string, detail = 'the CA could not validate the challenge'): void {
    this.settle(authzUrl, 'invalid', { type: 'urn:ietf:params:acme:error:unauthorized', detail });
  }

  private settle(authzUrl: string, status: 'valid' | 'invalid', error?: { type: string; detail: string }): void {
    const authz = this.authorizations.get(authzUrl);
    if (!authz) throw new Error(`no authorization ${authzUrl}`);
    authz.status = status;
    for (const c of authz.challenges) {
      c.status = status;
      if (error) c.error = error;
    }
    for (const order of this.orders.values()) {
      if (!order.authorizations.includes(authzUrl)) continue;
      const all = order.authorizations.map((u) => this.authorizations.get(u)?.status);
      if (all.includes('invalid')) order.status = 'invalid';
      else if (all.every((s) => s === 'valid') && order.status === 'pending') order.status = 'ready';
    }
  }

  private order(url: string): Order {
    const order = this.orders.get(url);
    if (!order) throw problem('malformed', `no order ${url}`);
    return order;
  }

  private challenge(url: string): Challenge {
    for (const authz of this.authorizations.values()) {
      const found = authz.challenges.find((c) => c.url === url);
      if (found) return found;
    }
    throw problem('malformed', `no challenge ${url}`);
  }
}
