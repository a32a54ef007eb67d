import { setTimeout as sleep } from 'node:timers/promises';
import { REGION, siteMark } from '../functions/src/runtime/site.js';
import { DynamoDbStepLog } from '../functions/src/runtime/store/dynamodb-step-log.js';
import type { SentPayment } from './producers.js';
import type { DrillRegion } from './region.js';

/** A step deliberately written differently into the region during the outage: a conflict the edge must report, not overwrite. */
export interface MadeConflict {
  readonly paymentId: string;
  readonly step: string;
  readonly index: number;
  /** The region's version as written. */
  readonly result: unknown;
}

const LOOK_AGAIN_MS = 250;

/**
 * Makes a conflict between the edge and the region, as two sites that both believed they owned a
 * payment would: the first low-risk payment sent after `offlineSince` that the gateway shows
 * authorized (by the edge: the region cannot have seen it) gets an authorize step of the region's
 * own, another answer, written into the region's step log as a region agent writes it, before the
 * edge syncs its own. Gives up (undefined) when `until` settles first.
 */
export async function makeConflict(region: DrillRegion, sent: readonly SentPayment[], offlineSince: number, until: Promise<unknown>): Promise<MadeConflict | undefined> {
  let over = false;
  void until.then(() => (over = true));
  const stepLog = new DynamoDbStepLog(region.documents, region.resources.tables.workflow);
  const tried = new Set<string>();
  while (!over) {
    const authorized = new Set(region.gateway.state.authorizations.map((authorization) => authorization.paymentId));
    const candidate = sent.find(
      (record) => record.sentAt > offlineSince && record.payment.kind === 'low-risk' && authorized.has(record.payment.paymentId) && !tried.has(record.payment.paymentId),
    );
    if (!candidate) {
      await sleep(LOOK_AGAIN_MS);
      continue;
    }
    const paymentId = candidate.payment.paymentId;
    tried.add(paymentId);
    const step = { name: 'authorize', index: 0 };
    const result = { answeredBy: 'stand-in', value: { authorizationId: `region-${paymentId}` }, skipped: [] };
    // Only where the region has no record of the step yet: a payment the sync already reached is passed over.
    const started = await stepLog.transitionStep(paymentId, step, ['absent'], { status: 'started', ranAt: siteMark(REGION) });
    if (!started) continue;
    await stepLog.transitionStep(paymentId, step, ['started'], { status: 'completed', result });
    return { paymentId, step: step.name, index: step.index, result };
  }
  return undefined;
}
