/**
 * The SQS semantics are written once, as generators that yield every storage call they make and
 * are handed its answer back. An engine whose storage answers at once (SQLite) runs them to the end
 * in one go, inside its transaction, with no promise anywhere; one whose storage answers later
 * (PostgreSQL) awaits each answer. A storage call's answer is `Pending`: the value itself, or a
 * promise of it.
 */
export type Pending<T> = T | Promise<T>;

/** Semantics that make storage calls on the way to a T. */
export type Step<T> = Generator<Pending<unknown>, T, unknown>;

/** The answer of one storage call: `const queue = yield* call(context.queues.byName(name))`. */
export function* call<T>(pending: Pending<T>): Step<T> {
  return (yield pending) as T;
}

/**
 * Runs a step whose storage calls answer at once (every yielded value is the answer itself). An
 * error a storage call throws is thrown where the call was made, so the step's own try/catch sees it.
 */
export function runNow<T>(step: Step<T>): T {
  let next = step.next();
  while (!next.done) next = step.next(next.value);
  return next.value;
}

/** Runs a step whose storage calls answer with promises, awaiting each; a rejection is thrown into the step where the call was made. */
export async function runAwaiting<T>(step: Step<T>): Promise<T> {
  let next = step.next();
  while (!next.done) {
    let answer: unknown;
    try {
      answer = await next.value;
    } catch (error) {
      next = step.throw(error);
      continue;
    }
    next = step.next(answer);
  }
  return next.value;
}
