// Changes made by other replicas reach this replica's watchers: while anybody watches, the hosts
// table is polled by updated_at, each poll looking `overlapMs` back past the previous one (a
// transaction stamps updated_at before it commits, and replicas' clocks differ a little).
import type { Logger, Queryable } from '@hostgate/service-runtime';
import type { FleetHub } from './fleet.ts';
import { hostsChangedSince } from './store.ts';

export interface FleetPollerOptions {
  db: Queryable;
  hub: FleetHub;
  logger: Logger;
  intervalMs: number;
  /** How far back each poll looks past the newest change seen (slow commits, clock skew between replicas). */
  overlapMs?: number;
  now?: () => Date;
}

const PAGE = 1000;

export class FleetPoller {
  private readonly options: Required<Omit<FleetPollerOptions, 'now'>> & { now: () => Date };
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** When the last successful poll started (the store's clock), ms; the next looks back from there. */
  private lastPoll: number;

  constructor(options: FleetPollerOptions) {
    this.options = { overlapMs: 5000, now: () => new Date(), ...options };
    this.lastPoll = this.options.now().getTime();
  }

  start(): void {
    this.timer ??= setInterval(() => {
      void this.tick();
    }, this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    // Nobody watching: nothing to tell, and the cursor moves on so a later watcher is not flooded.
    if (this.options.hub.watchers === 0) {
      this.lastPoll = this.options.now().getTime();
      return;
    }
    this.running = true;
    try {
      await this.poll();
    } catch (err) {
      this.options.logger.warn({ err }, 'fleet poll failed');
    } finally {
      this.running = false;
    }
  }

  /** One poll; returns how many changes it delivered. */
  async poll(): Promise<number> {
    const startedAt = Date.now();
    const pollTime = this.options.now().getTime();
    let since = new Date(this.lastPoll - this.options.overlapMs);
    let delivered = 0;
    for (;;) {
      const rows = await hostsChangedSince(this.options.db, since, PAGE);
      for (const state of rows) {
        if (this.options.hub.publishPolled(state, startedAt)) delivered++;
      }
      const last = rows.at(-1);
      if (rows.length < PAGE || last === undefined) break;
      // A page full of one instant cannot advance; the rest of that instant waits for the next poll.
      if (last.updatedAt.getTime() === since.getTime()) break;
      since = last.updatedAt;
    }
    this.lastPoll = pollTime;
    // A delivery is remembered well past the window that can re-read its row.
    this.options.hub.prune(startedAt - 4 * this.options.overlapMs);
    return delivered;
  }
}
