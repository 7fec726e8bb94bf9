import { keyledgerVitestConfig } from '../../vitest.shared.ts';

export default keyledgerVitestConfig('core');
