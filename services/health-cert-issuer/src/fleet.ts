// Fleet state: the health of a host as the store keeps it, and the hub that tells watchers of changes.
import type { Refusal } from './refusal.ts';

export type FleetCause = 'issued' | 'refused' | 'revoked' | 'expired';

/** One host's health, as stored in `hosts`. */
export interface HostState {
  hostId: string;
  healthy: boolean;
  cause: FleetCause;
  reason: string;
  /** Refusal code of the first refusal when refused; '' otherwise. */
  reasonCode: string;
  refusals: Refusal[];
  serial: string | null;
  expiresAt: Date | null;
  policyClass: string;
  policyVersion: number;
  attestationId: string;
  updatedAt: Date;
}

export interface FleetChange {
  state: HostState;
  cause: FleetCause;
}

export type FleetListener = (change: FleetChange) => void;

/** In-process fan-out of fleet changes made by this replica, in the order they were committed. */
export class FleetHub {
  private readonly listeners = new Set<FleetListener>();

  subscribe(listener: FleetListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  get watchers(): number {
    return this.listeners.size;
  }

  publish(change: FleetChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch {
        // A broken watcher must not stop the others; it is dropped.
        this.listeners.delete(listener);
      }
    }
  }
}
