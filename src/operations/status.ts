// The one order of operation states: what is terminal, and how far along a status is. The stores'
// conditional updates encode the same order in SQL; tests check observations against this.
import type { OperationStatus, TerminalStatus } from './types.js';

export const operationStatuses: readonly OperationStatus[] = [
  'notStarted',
  'running',
  'succeeded',
  'failed',
  'canceled',
];

const terminal = new Set<OperationStatus>(['succeeded', 'failed', 'canceled']);

export function isTerminal(status: OperationStatus): status is TerminalStatus {
  return terminal.has(status);
}

/** 0 not started, 1 running, 2 ended: a status may only move to a higher rank. */
export function statusRank(status: OperationStatus): 0 | 1 | 2 {
  if (status === 'notStarted') return 0;
  if (status === 'running') return 1;
  return 2;
}
