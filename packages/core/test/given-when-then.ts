import { expect } from 'vitest';
import { DomainError, type DomainErrorCode } from '../src/errors.ts';
import type { Decider } from '../src/event-store/decider.ts';

type Timed<E> = E & { occurred_at?: Date };
const T0 = new Date('2026-11-22T14:00:00.000Z');

/** `given(decider, [events]).when(command).then([events])` / `.thenThrows(code)`: pure, no database. */
export function given<S, C, E extends { type: string; data: unknown }>(
  decider: Decider<S, C, E>,
  history: Timed<E>[] = [],
) {
  const state = history.reduce(
    (s, e) => decider.evolve(s, { ...e, occurred_at: e.occurred_at ?? T0 }),
    decider.initialState(),
  );
  return {
    state,
    when(command: C) {
      return {
        // biome-ignore lint/suspicious/noThenProperty: the Given/When/Then vocabulary; this object is never awaited.
        then(expected: E[]) {
          expect(decider.decide(command, state)).toEqual(expected);
        },
        thenThrows(code: DomainErrorCode) {
          let thrown: unknown;
          try {
            decider.decide(command, state);
          } catch (error) {
            thrown = error;
          }
          expect(thrown).toBeInstanceOf(DomainError);
          expect((thrown as DomainError).code).toBe(code);
        },
      };
    },
  };
}
