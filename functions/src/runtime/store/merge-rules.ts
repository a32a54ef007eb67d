import { isDeepStrictEqual } from 'node:util';
import type { SagaRecord, SagaStatus, StepRecord, StepStatus } from './types.js';

/**
 * How an edge site's copy of a saga or step record merges into the region's. Both are state
 * machines whose moves only go forward, so two copies agree when they hold the same content and one
 * is the same as or further along the other's path: the one further along wins. Copies that hold
 * different content (another input, another outcome) or went down different paths (completed here,
 * failed there) conflict: neither may overwrite the other.
 */
export type MergeDecision = 'write' | 'identical' | 'conflict';

const SAGA_LATER: Readonly<Record<SagaStatus, readonly SagaStatus[]>> = {
  running: ['completed', 'escalated', 'compensating', 'compensated'],
  compensating: ['compensated'],
  completed: [],
  escalated: [],
  compensated: [],
};

const STEP_LATER: Readonly<Record<StepStatus, readonly StepStatus[]>> = {
  started: ['completed', 'failed', 'compensating', 'compensated'],
  completed: ['compensating', 'compensated'],
  compensating: ['compensated'],
  failed: [],
  compensated: [],
};

function byProgress<S extends string>(later: Readonly<Record<S, readonly S[]>>, region: S, edge: S): MergeDecision {
  if (region === edge) return 'identical';
  if (later[region].includes(edge)) return 'write';
  if (later[edge].includes(region)) return 'identical';
  return 'conflict';
}

export function mergeSagaDecision(region: SagaRecord | undefined, edge: SagaRecord): MergeDecision {
  if (!region) return 'write';
  if (region.workflow !== edge.workflow || !isDeepStrictEqual(region.input, edge.input)) return 'conflict';
  return byProgress(SAGA_LATER, region.status, edge.status);
}

/** What a step produced, for comparing two sites' runs: the alternative that answered and its answer. */
function stepAnswer(result: unknown): unknown {
  if (typeof result === 'object' && result !== null && 'answeredBy' in result) {
    const { answeredBy, value } = result as { answeredBy: unknown; value?: unknown };
    return { answeredBy, value };
  }
  return result;
}

export function mergeStepDecision(region: StepRecord | undefined, edge: StepRecord): MergeDecision {
  if (!region) return 'write';
  if (region.step !== edge.step) return 'conflict';
  if (region.result !== undefined && edge.result !== undefined && !isDeepStrictEqual(stepAnswer(region.result), stepAnswer(edge.result))) return 'conflict';
  return byProgress(STEP_LATER, region.status, edge.status);
}
