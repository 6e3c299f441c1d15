// What tests and chaos runs ask the simulator: its totals (`GET /stats`) and, only when it was
// started with faults, the fault settings (`GET`/`POST /_faults`) to change them while it runs.
import type { FastifyInstance } from 'fastify';
import type { PaymentsData } from '../data.js';
import type { FaultInjector, PaymentsFaults } from '../faults.js';
import { faultsInputSchema } from '../schemas.js';

export function adminRoutes(
  app: FastifyInstance,
  data: PaymentsData,
  faults: FaultInjector | undefined,
): void {
  app.get('/stats', async () => data.stats());
  if (faults === undefined) return;
  const current = () => ({ ...faults.settings, injected: { ...faults.injected } });
  app.get('/_faults', async () => current());
  app.post<{ Body: PaymentsFaults }>('/_faults', { schema: { body: faultsInputSchema } }, async (request) => {
    faults.update(request.body);
    return current();
  });
}
