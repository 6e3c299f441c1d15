// The payment provider simulator and its client: what the reference service's checkout charges,
// what tests and chaos runs start, and the `retrysafe payments-sim` command's parts.
export { buildPaymentsApp, paymentsScope } from './app.js';
export {
  createPaymentsClient,
  defaultPaymentsMaxAttempts,
  defaultPaymentsTimeoutMs,
  type PaymentsClient,
  type PaymentsClientOptions,
  toPaymentsError,
} from './client.js';
export {
  PaymentsError,
  type PaymentsOperation,
  PaymentsRejectedError,
  PaymentsUnavailableError,
} from './errors.js';
export {
  type FaultSettings,
  type InjectedFaults,
  InjectedOutageError,
  type PaymentsFaults,
} from './faults.js';
export { defaultCloseGraceMs, type PaymentsSim, type PaymentsSimOptions, startPaymentsSim } from './sim.js';
export type { Charge, ChargeInput, ChargePage, PaymentsStats, Refund, RefundInput } from './types.js';
