import { runStoreConformance } from '../conformance.ts';
import { MemoryStore } from './memory-store.ts';

runStoreConformance('memory', ({ indexedVars }) =>
  Promise.resolve(new MemoryStore({ indexedVars })),
);
