// The issuer's OpenTelemetry metrics. Instruments are made when the service starts, after
// runService started the SDK (a meter taken before that stays a no-op); without the SDK they cost nothing.
import { metrics } from '@opentelemetry/api';
import type { FleetHub } from './fleet.ts';

export type VerdictOutcome = 'issued' | 'refused' | 'redelivered' | 'dead_lettered';

export interface IssuerMetrics {
  verdict(outcome: VerdictOutcome, durationMs?: number): void;
  revoked(count: number, cause: 'attestation' | 'operator'): void;
}

export function createIssuerMetrics(hub?: FleetHub): IssuerMetrics {
  const meter = metrics.getMeter('@hostgate/health-cert-issuer');
  const verdicts = meter.createCounter('hostgate.issuer.verdicts', {
    description: 'verdicts handled, by outcome (issued, refused, redelivered, dead_lettered)',
  });
  const duration = meter.createHistogram('hostgate.issuer.verdict.duration', {
    description: 'time from decoding a verdict to publishing its outcome',
    unit: 'ms',
  });
  const revoked = meter.createCounter('hostgate.issuer.certificates.revoked', {
    description: 'certificates revoked, by cause (attestation, operator)',
  });
  if (hub !== undefined) {
    meter
      .createObservableGauge('hostgate.issuer.fleet.watchers', { description: 'open WatchFleet streams' })
      .addCallback((result) => result.observe(hub.watchers));
  }
  return {
    verdict: (outcome, durationMs) => {
      verdicts.add(1, { outcome });
      if (durationMs !== undefined) duration.record(durationMs, { outcome });
    },
    revoked: (count, cause) => {
      if (count > 0) revoked.add(count, { cause });
    },
  };
}
