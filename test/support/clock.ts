/** A clock tests move by hand: call it for the time, `advance` to move it. */
export interface FakeClock {
  (): number;
  advance(ms: number): number;
  set(ms: number): void;
}

export function fakeClock(start = Date.parse('2026-02-02T10:00:00.000Z')): FakeClock {
  let now = start;
  const clock = (() => now) as FakeClock;
  clock.advance = (ms) => (now += ms);
  clock.set = (ms) => {
    now = ms;
  };
  return clock;
}
