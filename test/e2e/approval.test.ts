/**
 * An external approver decides. certroute runs with --auto-approve=false; the test approves and
 * denies CertificateRequests exactly as `cmctl approve` and `cmctl deny` do: read the request, add
 * the Approved (or Denied) condition with status True, reason KubectlCertManager and the message
 * cmctl writes, and PUT it to the `status` subresource. certroute signs the approved request and
 * fails the denied one, which never reaches the CA: Pebble holds orders for the approved requests
 * only.
 */
import test from 'ava';
import { kubectl } from '../env/stack.ts';
import { applyYaml, cleanUpFile, freshNamespace, kubectlJson, startController, waitFor, waitForCertificateRevision, type ControllerProcess } from '../helpers/controller.ts';
import { certificateYaml, controllerFlags, deleteIssuers, newIssuer, orderLedger, ordersIn } from '../helpers/issuance.ts';

const controllerUser = `certroute-approval-${process.pid}`;
let controller: ControllerProcess | undefined;
let issuer = '';
let ns = '';

interface Condition { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string }
interface RequestView {
  metadata: { name: string; uid: string; resourceVersion: string };
  spec: { username?: string; groups?: string[] };
  status?: { conditions?: Condition[] };
}
interface EventView { reason: string; message: string; involvedObject: { kind: string; name: string; uid: string } }

/** `cmctl approve` / `cmctl deny`: Get, add the condition, UpdateStatus (a PUT with the resourceVersion read). */
async function decide(name: string, type: 'Approved' | 'Denied'): Promise<void> {
  const cr = await kubectlJson<RequestView & Record<string, unknown>>(['-n', ns, 'get', 'certificaterequest', name]);
  const verb = type === 'Approved' ? 'approved' : 'denied';
  const condition: Condition = {
    type, status: 'True', reason: 'KubectlCertManager', message: `manually ${verb} by "cmctl"`,
    lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
  const updated = { ...cr, status: { ...cr.status, conditions: [...(cr.status?.conditions ?? []), condition] } };
  await kubectl(['replace', '--subresource=status', '-f', '-'], { input: JSON.stringify(updated) });
}

const events = async (name: string): Promise<EventView[]> =>
  (await kubectlJson<{ items: EventView[] }>(['-n', ns, 'get', 'events', '--field-selector', `involvedObject.kind=CertificateRequest,involvedObject.name=${name}`])).items;

/** Positive evidence that certroute looked at the request (this one, not an earlier one of that name) and waits for a decision. */
const waitingForApproval = (name: string, notUid?: string) => waitFor(`certroute to hold ${name} for approval`, async () =>
  (await events(name)).find((e) => e.reason === 'WaitingForApproval' && e.involvedObject.uid !== notUid), 60_000, 200);

const request = (name: string) => kubectlJson<RequestView>(['-n', ns, 'get', 'certificaterequest', name]);
const condition = (cr: RequestView, type: string) => cr.status?.conditions?.find((c) => c.type === type);

test.before(async () => {
  // The controller talks to the API server as its own user: the requests it creates carry that name.
  controller = await startController([...controllerFlags, '--auto-approve=false'], { user: controllerUser });
  issuer = await newIssuer('approval');
  ns = await freshNamespace('approval');
});

test.after.always(async () => {
  await controller?.stop();
  await cleanUpFile();
  await deleteIssuers();
});

test.serial('with --auto-approve=false a request waits for an approver, and once approved as `cmctl approve` does it is signed', async (t) => {
  await applyYaml(certificateYaml(ns, 'approved', [`approved.${ns}.test`], issuer));
  await waitingForApproval('approved-1');
  const waiting = await request('approved-1');
  t.is(condition(waiting, 'Approved'), undefined, 'certroute did not approve it itself');
  t.deepEqual(await ordersIn(ns), [], 'nothing went to the CA before the decision');
  // The requester identity an approver such as approver-policy decides on: certroute's own user.
  t.is(waiting.spec.username, controllerUser);
  t.true(waiting.spec.groups?.includes('system:authenticated'));

  await decide('approved-1', 'Approved');
  await waitForCertificateRevision(ns, 'approved', 1, 120_000);
  const signed = await request('approved-1');
  t.like(condition(signed, 'Approved'), { status: 'True', reason: 'KubectlCertManager', message: 'manually approved by "cmctl"' }, 'the approver\'s condition stands as written');
  t.like(condition(signed, 'Ready'), { status: 'True', reason: 'Issued' });
});

test.serial('a request denied as `cmctl deny` does is not signed: the Certificate records the failure, asks again, and nothing reaches the CA', async (t) => {
  await applyYaml(certificateYaml(ns, 'denied', [`denied.${ns}.test`], issuer));
  const first = await waitingForApproval('denied-1');
  await decide('denied-1', 'Denied');

  // certroute fails the request and the Certificate counts the failure (and deletes the request).
  const cert = await waitFor('the Certificate to record the denial', async () => {
    const c = await kubectlJson<{ status?: { failedIssuanceAttempts?: number; lastFailureTime?: string } }>(['-n', ns, 'get', 'certificate', 'denied']);
    return (c.status?.failedIssuanceAttempts ?? 0) >= 1 ? c : undefined;
  }, 60_000, 200);
  t.truthy(cert.status?.lastFailureTime);
  const failed = (await kubectlJson<{ items: EventView[] }>(['-n', ns, 'get', 'events', '--field-selector', 'involvedObject.kind=Certificate,involvedObject.name=denied,reason=Failed'])).items;
  t.regex(failed[0]?.message ?? '', /^The certificate request has failed to complete and will be retried: The CertificateRequest was denied/);

  // After the back-off the Certificate asks again (cert-manager names the retry after the same
  // revision); the new request waits for a decision too.
  const retry = await waitingForApproval('denied-1', first.involvedObject.uid);
  const again = await request('denied-1');
  t.is(again.metadata.uid, retry.involvedObject.uid);
  t.is(condition(again, 'Approved'), undefined);
  t.is(condition(again, 'Denied'), undefined, 'the denial was of the earlier request');

  // Pebble holds exactly the approved request's order, and the cluster records no other.
  const { atPebble, inCluster } = await orderLedger(issuer, [ns]);
  t.is(atPebble.length, 1, `orders at Pebble: ${atPebble.join(', ')}`);
  t.deepEqual(atPebble, inCluster);
  t.deepEqual((await ordersIn(ns)).map((o) => o.metadata.name).filter((n) => n.startsWith('denied')), []);
});
