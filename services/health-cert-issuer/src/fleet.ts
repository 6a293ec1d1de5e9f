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

interface Delivered {
  /** updated_at of the state last delivered, ms. */
  updatedAt: number;
  /** When it was delivered (this process's clock), ms. */
  at: number;
}

/**
 * Fan-out of fleet changes to this replica's watchers: its own changes as they commit, and the
 * other replicas' as the poller finds them in the store. Remembers what it delivered per host so
 * a change seen both ways reaches a watcher once.
 */
export class FleetHub {
  private readonly listeners = new Set<FleetListener>();
  private readonly delivered = new Map<string, Delivered>();

  subscribe(listener: FleetListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  get watchers(): number {
    return this.listeners.size;
  }

  /** A change committed by this replica. */
  publish(change: FleetChange): void {
    this.delivered.set(change.state.hostId, { updatedAt: change.state.updatedAt.getTime(), at: Date.now() });
    this.fanOut(change);
  }

  /**
   * A host state read from the store by a poll that started at `pollStartedAt` (Date.now()).
   * Dropped when already delivered, or when this replica delivered a change of the host after the
   * poll started: the row may predate it, and the next poll (its window overlaps) reads it again.
   */
  publishPolled(state: HostState, pollStartedAt: number): boolean {
    const last = this.delivered.get(state.hostId);
    if (last !== undefined && (last.updatedAt === state.updatedAt.getTime() || last.at >= pollStartedAt))
      return false;
    this.delivered.set(state.hostId, { updatedAt: state.updatedAt.getTime(), at: Date.now() });
    this.fanOut({ state, cause: state.cause });
    return true;
  }

  /** Forgets deliveries older than `olderThan` (ms, this process's clock): they are outside any poll window. */
  prune(olderThan: number): void {
    for (const [host, d] of this.delivered) if (d.at < olderThan) this.delivered.delete(host);
  }

  private fanOut(change: FleetChange): void {
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
