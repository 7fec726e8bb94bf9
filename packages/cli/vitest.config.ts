import { keyledgerVitestConfig } from '../../vitest.shared.ts';

export default keyledgerVitestConfig('cli', { testTimeout: 90_000 });
