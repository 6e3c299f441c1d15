// Runs the store contract against the in-process memory store.
import { createMemoryStore } from '../../src/stores/memory.js';
import { describeStoreContract } from './contract.js';

describeStoreContract(
  'memory',
  { create: async () => ({ store: createMemoryStore(), cleanup: async () => {} }) },
  { expiry: 'reaper', transactional: false },
);
