import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { paginateScan } from '@aws-sdk/lib-dynamodb';
import type { EdgeStatus } from '../edge-shim/src/observability/status.js';
import { Ledger } from '../functions/src/runtime/ledger.js';
import { HUMAN_REVIEW } from '../functions/src/runtime/saga.js';
import { DynamoDbCounters } from '../functions/src/runtime/store/dynamodb-counters.js';
import { DynamoDbLedger } from '../functions/src/runtime/store/dynamodb-ledger.js';
import { DynamoDbStepLog } from '../functions/src/runtime/store/dynamodb-step-log.js';
import type { SagaRecord, SagaStatus, StepRecord } from '../functions/src/runtime/store/types.js';
import { EDGE_LIMIT_DEFAULTS, velocityKey } from '../functions/src/workflows/payments-saga.js';
import type { MadeConflict } from './conflict.js';
import type { PlannedPayment } from './payments-mix.js';
import type { SentPayment } from './producers.js';
import type { DrillRegion } from './region.js';

export const FINAL_SAGA_STATES: readonly SagaStatus[] = ['completed', 'escalated', 'compensated'];

/** A payment's saga as the region's step log holds it. */
export interface RegionSaga {
  readonly saga: SagaRecord | undefined;
  readonly steps: StepRecord[];
}

/** Loads the sagas of many payments from the region's step log, a few at a time. */
export async function loadSagas(region: DrillRegion, paymentIds: readonly string[]): Promise<Map<string, RegionSaga>> {
  const stepLog = new DynamoDbStepLog(region.documents, region.resources.tables.workflow);
  const sagas = new Map<string, RegionSaga>();
  const queue = [...paymentIds];
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) sagas.set(id, await stepLog.load(id));
    }),
  );
  return sagas;
}

export const isFinal = (saga: RegionSaga | undefined) => saga?.saga !== undefined && FINAL_SAGA_STATES.includes(saga.saga.status);

export interface VerifyInput {
  readonly region: DrillRegion;
  readonly sent: readonly SentPayment[];
  /** The edge's status at the end (absent for the baseline, which has no edge). */
  readonly edge?: EdgeStatus;
  readonly madeConflicts: readonly MadeConflict[];
}

/** What the checks found, from the outside: the region's tables and queues, the gateway, the notifier, the edge's status. */
export interface Findings {
  readonly sent: number;
  readonly acknowledged: number;
  /** Sends that failed after the SDK's retries: the shop was told no. */
  readonly rejected: number;
  /** Of those, ones the region processed anyway (the answer was lost on the way back). */
  readonly rejectedButProcessed: number;
  /** Acknowledged payments whose saga never reached a final state in the region, or was never seen. */
  readonly lost: number;
  readonly lostPayments: readonly string[];
  readonly completed: number;
  readonly escalated: number;
  readonly compensated: number;
  readonly authorizedTwice: number;
  readonly postedTwice: number;
  readonly notifiedTwice: number;
  readonly notified: number;
  readonly ledgerBalanced: boolean;
  /** Payments whose authorize step ran at the edge: processed there or escalated there. */
  readonly handledAtEdge: number;
  /** Authorized at the edge (by the gateway, or stand-in). */
  readonly processedAtEdge: number;
  /** processedAtEdge / handledAtEdge (null when the edge handled none). */
  readonly processedAtEdgeShare: number | null;
  readonly escalatedAtEdge: number;
  /** Escalations seen in the region's human review queue (this run's, each once). */
  readonly inHumanReview: number;
  /** Accounts whose velocity counter in the region differs from the payments actually scored. */
  readonly velocityMismatches: readonly string[];
  readonly conflicts: number;
  readonly conflictsMade: number;
  /** Every check that failed, in words; empty when all passed. */
  readonly failures: readonly string[];
}

const answeredBy = (step: StepRecord | undefined) => (step?.result as { answeredBy?: string } | undefined)?.answeredBy;
const stepNamed = (saga: RegionSaga | undefined, name: string) => saga?.steps.find((step) => step.step === name);
const limitList = (ids: readonly string[]) => (ids.length > 5 ? `${ids.slice(0, 5).join(', ')} and ${ids.length - 5} more` : ids.join(', '));

/** Scans the ledger's posting headers: which payment each posts or reverses (by its memo). */
async function postingsByPayment(region: DrillRegion): Promise<{ posted: Map<string, number>; reversed: Map<string, number> }> {
  const posted = new Map<string, number>();
  const reversed = new Map<string, number>();
  const pages = paginateScan(
    { client: region.documents },
    { TableName: region.resources.tables.ledger, FilterExpression: 'sk = :posting', ExpressionAttributeValues: { ':posting': 'posting' }, ConsistentRead: true },
  );
  for await (const page of pages) {
    for (const item of page.Items ?? []) {
      const memo = String(item.memo);
      const reversal = /^reversal of payment (.+)$/.exec(memo);
      const posting = /^payment (.+)$/.exec(memo);
      if (reversal) reversed.set(reversal[1]!, (reversed.get(reversal[1]!) ?? 0) + 1);
      else if (posting) posted.set(posting[1]!, (posted.get(posting[1]!) ?? 0) + 1);
    }
  }
  return { posted, reversed };
}

/** Takes this run's escalations out of the region's human review queue (as a reviewer would), by payment. */
async function takeHumanReview(region: DrillRegion, ours: ReadonlySet<string>): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const QueueUrl = region.resources.humanReviewQueueUrl;
  for (;;) {
    const { Messages = [] } = await region.sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60 }));
    if (Messages.length === 0) return seen;
    const mine = Messages.filter((message) => ours.has((JSON.parse(message.Body ?? '{}') as { workflowId?: string }).workflowId ?? ''));
    for (const message of mine) {
      const id = (JSON.parse(message.Body!) as { workflowId: string }).workflowId;
      seen.set(id, (seen.get(id) ?? 0) + 1);
    }
    if (mine.length > 0) {
      await region.sqs.send(new DeleteMessageBatchCommand({ QueueUrl, Entries: mine.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle! })) }));
    }
    // Another run's messages stay (invisible for a minute): this run's are all taken once none is left among them.
    if (mine.length === 0) return seen;
  }
}

/**
 * What the region's dead-letter queues hold, each with what says how it got there: its task, how
 * often it was received, when it was sent and first received. Looked at, not taken.
 */
async function deadLettered(region: DrillRegion): Promise<string[]> {
  const found: string[] = [];
  for (const [stage, { deadLetterQueueUrl }] of Object.entries(region.resources.queues)) {
    const { Messages = [] } = await region.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: deadLetterQueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0, MessageSystemAttributeNames: ['All'] }),
    );
    for (const message of Messages) {
      const task = JSON.parse(message.Body ?? '{}') as { workflowId?: string };
      const at = (attribute: string) => {
        const ms = Number(message.Attributes?.[attribute as keyof typeof message.Attributes]);
        return Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : '-';
      };
      found.push(
        `${stage}: ${task.workflowId ?? message.MessageId} (received ${message.Attributes?.ApproximateReceiveCount ?? '?'} times there, sent ${at('SentTimestamp')}, first received ${at('ApproximateFirstReceiveTimestamp')})`,
      );
    }
  }
  return found;
}

/**
 * Checks a finished run from the outside, once the pipeline has drained: every acknowledged
 * payment final in the region's step log; the gateway's authorizations, the ledger's postings and
 * the notifier's notifications at most once per payment and consistent with how each saga ended;
 * the trial balance; the velocity counters against the payments actually scored; the human review
 * queue against the escalations; the edge's degraded mode against its limits; the conflicts the
 * edge reports against those made.
 */
export async function verify(input: VerifyInput): Promise<Findings> {
  const { region, sent, edge, madeConflicts } = input;
  const failures: string[] = [];
  const fail = (what: string, ids: readonly string[]) => {
    if (ids.length > 0) failures.push(`${what}: ${ids.length} (${limitList(ids)})`);
  };
  const byId = new Map(sent.map((record) => [record.payment.paymentId, record]));
  const sagas = await loadSagas(region, [...byId.keys()]);
  const conflicted = new Set(madeConflicts.map((conflict) => conflict.paymentId));

  const acknowledged = sent.filter((record) => record.acknowledged);
  const rejected = sent.filter((record) => !record.acknowledged);
  const lostPayments = acknowledged.filter((record) => !isFinal(sagas.get(record.payment.paymentId))).map((record) => record.payment.paymentId);
  const statusOf = (id: string) => sagas.get(id)?.saga?.status;
  const withStatus = (status: SagaStatus) => sent.filter((record) => statusOf(record.payment.paymentId) === status).map((record) => record.payment.paymentId);
  const completed = withStatus('completed');
  const escalated = withStatus('escalated');
  const compensated = withStatus('compensated');

  // The gateway and the notifier: at most once per payment, and as the sagas ended.
  const authorizations = new Map<string, number>();
  for (const authorization of region.gateway.state.authorizations) {
    if (byId.has(authorization.paymentId) && authorization.status === 'authorized') authorizations.set(authorization.paymentId, (authorizations.get(authorization.paymentId) ?? 0) + 1);
  }
  const notifications = new Map<string, number>();
  for (const notification of region.notifier.state.notifications) {
    if (byId.has(notification.paymentId)) notifications.set(notification.paymentId, (notifications.get(notification.paymentId) ?? 0) + 1);
  }
  const authorizedTwice = [...authorizations].filter(([, count]) => count > 1).map(([id]) => id);
  const notifiedTwice = [...notifications].filter(([, count]) => count > 1).map(([id]) => id);
  fail('authorized more than once at the gateway', authorizedTwice);
  fail('notified more than once', notifiedTwice);
  const byGateway = (id: string) => answeredBy(stepNamed(sagas.get(id), 'authorize')) === 'gateway';
  fail(
    'completed by the gateway but not authorized there exactly once',
    completed.filter((id) => byGateway(id) && !conflicted.has(id) && authorizations.get(id) !== 1),
  );
  fail('authorized at the gateway but not completed (and not voided)', [...authorizations.keys()].filter((id) => statusOf(id) !== 'completed'));
  fail('completed but never notified', completed.filter((id) => notifications.get(id) !== 1));

  // The ledger: one posting per completed payment, none for the others unless reversed.
  const { posted, reversed } = await postingsByPayment(region);
  const postedTwice = [...posted].filter(([id, count]) => byId.has(id) && count > 1).map(([id]) => id);
  fail('posted more than once', postedTwice);
  fail('completed but not posted', completed.filter((id) => posted.get(id) !== 1));
  fail('posted but not completed (and not reversed)', [...posted.keys()].filter((id) => byId.has(id) && statusOf(id) !== 'completed' && reversed.get(id) !== 1));
  const balance = await new Ledger(new DynamoDbLedger(region.documents, region.resources.tables.ledger)).trialBalance();
  if (!balance.balanced) failures.push(`the ledger does not balance: ${JSON.stringify(balance.byCurrency)}`);

  // Where each payment was authorized: at the edge (processed or escalated there) or in the region.
  const authorizeAtEdge = (id: string) => stepNamed(sagas.get(id), 'authorize')?.ranAt?.atEdge === true;
  const handledAtEdge = sent.map((record) => record.payment).filter((payment) => authorizeAtEdge(payment.paymentId));
  const escalatedAtEdge = handledAtEdge.filter((payment) => answeredBy(stepNamed(sagas.get(payment.paymentId), 'authorize')) === HUMAN_REVIEW);
  const processedAtEdge = handledAtEdge.filter((payment) => !escalatedAtEdge.includes(payment));
  failures.push(...degradedModeFailures(processedAtEdge, escalatedAtEdge));

  // Escalations reach the region's human review queue, each once.
  const inHumanReview = await takeHumanReview(region, new Set(byId.keys()));
  fail('escalated but not in the region\'s human review queue exactly once', escalated.filter((id) => inHumanReview.get(id) !== 1));
  fail('in human review but not escalated', [...inHumanReview.keys()].filter((id) => statusOf(id) !== 'escalated'));

  // Velocity: each account's counter in the region (all writers) is the number of its payments scored.
  const velocityMismatches = await velocityFailures(region, sent, sagas);
  fail('accounts whose velocity counter is not the number of their payments scored', velocityMismatches);

  // The region's queues: empty but for human review.
  const depths = await region.queueDepths();
  fail('region queues not empty', Object.entries(depths).filter(([, count]) => count > 0).map(([url, count]) => `${url.split('/').pop()}: ${count}`));
  fail('dead-lettered in the region', await deadLettered(region));

  // The edge: back online, nothing left, the sync not failed, and exactly the conflicts that were made.
  let conflicts = 0;
  if (edge) {
    conflicts = edge.conflictCount;
    if (edge.mode !== 'online' || edge.backlog !== 0) failures.push(`the edge is ${edge.mode} with a backlog of ${edge.backlog}, not online with none`);
    if (edge.sync?.state === 'failed') failures.push(`the edge's last sync failed: ${edge.sync.lastError}`);
    const reported = new Set(edge.conflicts.filter((conflict) => conflict.kind === 'step').map((conflict) => conflict.key));
    fail('conflicts made but not reported', madeConflicts.filter((made) => !reported.has(`${made.paymentId}/${made.index}`)).map((made) => made.paymentId));
    if (edge.conflictCount !== madeConflicts.length) {
      const unexpected = edge.conflicts.filter((conflict) => !madeConflicts.some((made) => conflict.key === `${made.paymentId}/${made.index}`));
      failures.push(`the edge reports ${edge.conflictCount} conflicts where ${madeConflicts.length} were made: ${unexpected.slice(0, 5).map((conflict) => `${conflict.kind} ${conflict.key}`).join(', ')}`);
    }
  }
  fail(
    'conflicts made whose region record was overwritten',
    madeConflicts.filter((made) => JSON.stringify(stepNamed(sagas.get(made.paymentId), made.step)?.result) !== JSON.stringify(made.result)).map((made) => made.paymentId),
  );

  fail('acknowledged but lost', lostPayments);
  const rejectedButProcessed = rejected.filter((record) => sagas.get(record.payment.paymentId)?.saga !== undefined).length;
  return {
    sent: sent.length,
    acknowledged: acknowledged.length,
    rejected: rejected.length,
    rejectedButProcessed,
    lost: lostPayments.length,
    lostPayments: lostPayments.slice(0, 20),
    completed: completed.length,
    escalated: escalated.length,
    compensated: compensated.length,
    authorizedTwice: authorizedTwice.length,
    postedTwice: postedTwice.length,
    notifiedTwice: notifiedTwice.length,
    notified: notifications.size,
    ledgerBalanced: balance.balanced,
    handledAtEdge: handledAtEdge.length,
    processedAtEdge: processedAtEdge.length,
    processedAtEdgeShare: handledAtEdge.length === 0 ? null : processedAtEdge.length / handledAtEdge.length,
    escalatedAtEdge: escalatedAtEdge.length,
    inHumanReview: inHumanReview.size,
    velocityMismatches,
    conflicts,
    conflictsMade: madeConflicts.length,
    failures,
  };
}

/**
 * The edge's degraded mode, checked against its limits (the defaults; the drill sets none): what it
 * authorized was within the per-payment limit and, per account and for the site, within the
 * offline exposure limits; a large payment was never authorized there; a low-risk payment (a small
 * amount on a fresh account) always was, unless the site's exposure limit was reached.
 */
function degradedModeFailures(processed: readonly PlannedPayment[], escalated: readonly PlannedPayment[]): string[] {
  const failures: string[] = [];
  const limits = EDGE_LIMIT_DEFAULTS;
  const overLimit = processed.filter((payment) => payment.amountMinor > limits.paymentMinor).map((payment) => payment.paymentId);
  if (overLimit.length > 0) failures.push(`authorized at the edge above the per-payment limit: ${limitList(overLimit)}`);
  const byAccount = new Map<string, number>();
  for (const payment of processed) byAccount.set(payment.account, (byAccount.get(payment.account) ?? 0) + payment.amountMinor);
  const overExposed = [...byAccount].filter(([, total]) => total > limits.accountExposureMinor).map(([account]) => account);
  if (overExposed.length > 0) failures.push(`accounts authorized at the edge beyond the account exposure limit: ${limitList(overExposed)}`);
  const siteTotal = processed.reduce((sum, payment) => sum + payment.amountMinor, 0);
  if (siteTotal > limits.siteExposureMinor) failures.push(`the edge authorized ${siteTotal} in all, beyond the site exposure limit of ${limits.siteExposureMinor}`);
  const large = processed.filter((payment) => payment.kind === 'large').map((payment) => payment.paymentId);
  if (large.length > 0) failures.push(`large payments authorized at the edge: ${limitList(large)}`);
  const siteLimitNear = siteTotal + Math.max(0, ...escalated.map((payment) => payment.amountMinor)) > limits.siteExposureMinor;
  const lowRiskEscalated = escalated.filter((payment) => payment.kind === 'low-risk').map((payment) => payment.paymentId);
  if (lowRiskEscalated.length > 0 && !siteLimitNear) failures.push(`low-risk payments escalated at the edge: ${limitList(lowRiskEscalated)}`);
  return failures;
}

/** Accounts whose velocity counter (summed over writers, per day) is not the number of their payments the fraud-score step ran for. */
async function velocityFailures(region: DrillRegion, sent: readonly SentPayment[], sagas: ReadonlyMap<string, RegionSaga>): Promise<string[]> {
  const expected = new Map<string, number>();
  for (const { payment } of sent) {
    const scored = stepNamed(sagas.get(payment.paymentId), 'fraud-score');
    if (!scored || scored.status === 'started') continue;
    const day = scored.ranAt?.at.slice(0, 10) ?? new Date().toISOString().slice(0, 10);
    const key = velocityKey(payment.account, day);
    expected.set(key, (expected.get(key) ?? 0) + 1);
  }
  const counters = new DynamoDbCounters(region.documents, region.resources.tables.state);
  const mismatches: string[] = [];
  for (const [key, count] of expected) {
    const counts = await counters.read(key);
    const total = Object.values(counts).reduce((sum, value) => sum + value, 0);
    if (total !== count) mismatches.push(`${key}: ${total} counted, ${count} scored (${JSON.stringify(counts)})`);
  }
  return mismatches;
}
