import { cleanup } from '@testing-library/react';
import { afterEach } from 'vitest';

// happy-dom lays nothing out: give elements a size so the virtualised audit table renders the rows in view.
Element.prototype.getBoundingClientRect = function getBoundingClientRect() {
  return { x: 0, y: 0, top: 0, left: 0, right: 1000, bottom: 560, width: 1000, height: 560, toJSON: () => ({}) };
};

afterEach(() => {
  cleanup();
});
for (const [prop, value] of [
  ['offsetHeight', 560],
  ['offsetWidth', 1000],
  ['clientHeight', 560],
  ['clientWidth', 1000],
] as const) {
  Object.defineProperty(HTMLElement.prototype, prop, { configurable: true, get: () => value });
}
