import type { KeyledgerEvent } from '../catalogue.ts';

/** An event as a decider's fold sees it: type, data and when it happened. */
export type Evolvable<E extends { type: string; data: unknown } = KeyledgerEvent> = E & { readonly occurred_at: Date };

/** Emmett's decider: `decide` is pure (time, actor and ids come in the command), `evolve` is a fold. */
export interface Decider<State, Command, Event extends { type: string; data: unknown }> {
  initialState(): State;
  evolve(state: State, event: Evolvable<Event>): State;
  decide(command: Command, state: State): Event[];
}

export function fold<State, Command, Event extends { type: string; data: unknown }>(
  decider: Decider<State, Command, Event>,
  events: readonly { type: string; data: unknown; occurred_at: Date }[],
): State {
  return events.reduce((s, e) => decider.evolve(s, e as Evolvable<Event>), decider.initialState());
}
