import { fallback, handleWhen } from 'cockatiel';
import { isPermanent } from './errors.js';
import { DeadlineExceededError } from './resilience.js';

/** One way to answer a step: a primary service, a secondary one, a local heuristic, a human. */
export interface Alternative<C> {
  readonly name: string;
  run(context: C): Promise<unknown>;
  /** Needs the region (its data or services): skipped at the edge. */
  readonly regionOnly?: boolean;
}

export interface FallbackOutcome {
  /** Name of the alternative that answered. */
  readonly answeredBy: string;
  readonly value: unknown;
  /** Alternatives tried before it, with why each gave no answer. */
  readonly skipped: readonly { readonly name: string; readonly reason: string }[];
}

/**
 * Whether the next alternative should be tried: yes when this one is unavailable (retries exhausted,
 * circuit open, timed out), no when the request itself was refused or the invocation is out of time.
 */
function fallsThrough(error: Error): boolean {
  return !isPermanent(error) && !(error instanceof DeadlineExceededError);
}

/**
 * Tries the alternatives in order until one answers; the outcome records which one did, and why
 * each one before it (and those in `skippedBefore`, left out by the caller) gave no answer.
 */
export function runFallbackChain<C>(
  alternatives: readonly Alternative<C>[],
  context: C,
  skippedBefore: readonly { name: string; reason: string }[] = [],
): Promise<FallbackOutcome> {
  if (alternatives.length === 0) throw new Error('a fallback chain needs at least one alternative');
  const skipped = [...skippedBefore];
  const attempt = (index: number): Promise<FallbackOutcome> => {
    const alternative = alternatives[index]!;
    const answer = async (): Promise<FallbackOutcome> => ({ answeredBy: alternative.name, value: await alternative.run(context), skipped });
    if (index === alternatives.length - 1) return answer();
    const toNext = fallback(
      handleWhen((error) => {
        if (!fallsThrough(error)) return false;
        skipped.push({ name: alternative.name, reason: `${error.constructor.name}: ${error.message}` });
        return true;
      }),
      () => attempt(index + 1),
    );
    return toNext.execute(answer);
  };
  return attempt(0);
}
