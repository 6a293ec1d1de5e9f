// Admin calls (policies, host lifecycle) are authenticated the same way in every service:
// with an admin token configured, `authorization: Bearer <token>` is required; without one,
// only loopback callers are accepted (DESIGN.md: admin operations are authenticated and audited).
import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';

/** gRPC metadata naming the operator behind an admin call (audit). */
export const OPERATOR_METADATA = 'x-hostgate-operator';

/** What authorizeAdmin needs of a call: its metadata and its peer (grpc-js ServerUnaryCall has both). */
export interface AdminCall {
  metadata: grpc.Metadata;
  getPeer(): string;
}

/** A refused admin call; carries the gRPC status so each service can answer with it. */
export class AdminAuthError extends Error {
  override readonly name = 'AdminAuthError';
  readonly code: grpc.status.UNAUTHENTICATED | grpc.status.PERMISSION_DENIED;
  readonly details: string;
  constructor(code: grpc.status.UNAUTHENTICATED | grpc.status.PERMISSION_DENIED, details: string) {
    super(details);
    this.code = code;
    this.details = details;
  }
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** The IP address of a gRPC peer string, or undefined when it names none. */
function peerAddress(peer: string): string | undefined {
  // grpc-js gives "127.0.0.1:5" or "::1:5"; C-core style adds "ipv4:" / "ipv6:" and brackets IPv6.
  const p = peer.replace(/^ipv[46]:/, '');
  const bracketed = /^\[([^\]]+)\]:\d{1,5}$/.exec(p);
  if (bracketed !== null) return isIP(bracketed[1]!) === 6 ? bracketed[1] : undefined;
  const m = /^(.+):\d{1,5}$/.exec(p);
  return m !== null && isIP(m[1]!) !== 0 ? m[1] : undefined;
}

/** True when the peer is on this machine: 127.0.0.0/8, ::1 (any spelling), ::ffff:127.x, or a unix socket. */
export function isLoopbackPeer(peer: string): boolean {
  if (peer.startsWith('unix:')) return true;
  const address = peerAddress(peer);
  if (address === undefined) return false;
  return LOOPBACK.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

function metadataString(md: grpc.Metadata, key: string): string {
  const v = md.get(key)[0];
  return typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : '';
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * The operator of an admin call for the audit log, or the error refusing it.
 * Token configured: the call must present it (compared as digests, in constant time).
 * No token: only loopback peers are accepted. The actor is the x-hostgate-operator metadata
 * (x-hostgate-actor also read) when it is a plain name, else "admin" (token) or "local@<peer>".
 */
export function authorizeAdmin(
  call: AdminCall,
  adminToken: string | undefined,
  what = 'this admin call',
): string | AdminAuthError {
  const named =
    metadataString(call.metadata, OPERATOR_METADATA) || metadataString(call.metadata, 'x-hostgate-actor');
  const operator = /^[\w.@:-]{1,64}$/.test(named) ? named : undefined;
  if (adminToken !== undefined) {
    const m = /^Bearer (.+)$/.exec(metadataString(call.metadata, 'authorization'));
    if (m === null || !timingSafeEqual(sha256(m[1]!), sha256(adminToken)))
      return new AdminAuthError(
        grpc.status.UNAUTHENTICATED,
        `${what} needs the metadata "authorization: Bearer <admin token>"`,
      );
    return operator ?? 'admin';
  }
  const peer = call.getPeer();
  if (!isLoopbackPeer(peer))
    return new AdminAuthError(
      grpc.status.PERMISSION_DENIED,
      `no admin token is configured: ${what} is accepted from loopback callers only`,
    );
  return operator ?? `local@${peer}`;
}

/** Logged once at start, so an operator sees why remote admin calls are refused. */
export function warnIfAdminLoopbackOnly(
  logger: { warn(obj: object, msg: string): void },
  adminToken: string | undefined,
  calls: readonly string[],
): void {
  if (adminToken === undefined)
    logger.warn({ calls }, 'no admin token configured: admin calls are accepted from loopback callers only');
}
