import { keyledgerVitestConfig } from '../../vitest.shared.ts';

export default keyledgerVitestConfig('server', { testTimeout: 90_000 });
