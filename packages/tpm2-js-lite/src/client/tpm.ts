import { randomBytes } from 'node:crypto';
import { HASH_ALG, HASH_BY_ALG, type HashName } from '../constants.ts';
import { EK_CERT_NV_INDEX } from '../ek-cert.ts';
import {
  type EkPolicy,
  type EkTemplateId,
  ekPolicyFor,
  ekTemplateId,
  ekTemplateInfo,
} from '../ek-templates.ts';
import { Tpm2Error } from '../errors.ts';
import { pcrSelection, readPcrSelectionList, selectedPcrs, writePcrSelectionList } from '../pcr.ts';
import { TpmResponseError, TpmTransportError } from './errors.ts';
import { unmarshalTpmtPublic } from '../public.ts';
import { checkResponseFrame, openTransport, type Transport, type TransportOptions } from './transport.ts';
import { CommandWriter, ResponseReader } from './wire.ts';

/** Permanent handles (TPM 2.0 Part 2 §7.4). */
export const TPM_RH = {
  OWNER: 0x40000001,
  NULL: 0x40000007,
  PW: 0x40000009,
  LOCKOUT: 0x4000000a,
  ENDORSEMENT: 0x4000000b,
  PLATFORM: 0x4000000c,
} as const;

export { EK_CERT_NV_INDEX };

const CC = {
  ActivateCredential: 0x147,
  Certify: 0x148,
  CreatePrimary: 0x131,
  Create: 0x153,
  FlushContext: 0x165,
  GetCapability: 0x17a,
  GetRandom: 0x17b,
  Load: 0x157,
  NV_Read: 0x14e,
  NV_ReadPublic: 0x169,
  PCR_Extend: 0x182,
  PCR_Read: 0x17e,
  PolicyGetDigest: 0x189,
  PolicyOR: 0x171,
  PolicySecret: 0x151,
  Quote: 0x158,
  ReadPublic: 0x173,
  StartAuthSession: 0x176,
  Startup: 0x144,
} as const;

const ST_NO_SESSIONS = 0x8001;
const ST_SESSIONS = 0x8002;
const TPM_RC_INITIALIZE = 0x100;
/** TPM_RC_YIELDED, TPM_RC_TESTING, TPM_RC_RETRY. */
const RETRYABLE = new Set([0x908, 0x90a, 0x922]);
const MAX_RETRIES = 8;

export type { HashName };
const HASH_SIZE: Record<HashName, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

/** How one handle in a command is authorized. */
export type Authorization =
  /** TPM_RS_PW with the entity's authValue (empty by default). */
  | { kind: 'password'; value?: Uint8Array }
  /** A policy session already satisfied (e.g. by policySecret); consumed unless continueSession. */
  | { kind: 'policy'; session: number; continueSession?: boolean };

const EMPTY = new Uint8Array(0);
const PASSWORD: Authorization = { kind: 'password' };

export interface PcrSelection {
  hash: HashName;
  pcrs: number[];
}

export interface PcrValues {
  updateCounter: number;
  /** hash → pcr index → digest */
  values: Map<HashName, Map<number, Uint8Array>>;
}

export interface CreatedObject {
  handle: number;
  /** TPMT_PUBLIC bytes (the contents of the TPM2B_PUBLIC). */
  public: Uint8Array;
  /** TPM2B_NAME contents: nameAlg ‖ digest of the public area. */
  name: Uint8Array;
}

export interface AttestationResult {
  /** TPMS_ATTEST bytes (contents of the TPM2B_ATTEST): what was signed. */
  attest: Uint8Array;
  /** Marshaled TPMT_SIGNATURE, as tpm2-tools writes it with `-f plain` absent (tss format). */
  signature: Uint8Array;
}

export interface NvPublic {
  index: number;
  nameAlg: number;
  attributes: number;
  authPolicy: Uint8Array;
  dataSize: number;
  name: Uint8Array;
}

interface CommandSpec {
  name: string;
  code: number;
  /** Handles in the handle area; the first `auths.length` of them are authorized in order. */
  handles?: number[];
  auths?: Authorization[];
  params?: (w: CommandWriter) => void;
  /** How many handles the response carries before its parameters. */
  responseHandles?: number;
}

function selectionWriter(w: CommandWriter, selections: PcrSelection[]): void {
  for (const sel of selections)
    if (HASH_ALG[sel.hash] === undefined) throw new RangeError(`unknown hash ${sel.hash}`);
  // pcrSelection makes at least 3 octets of bitmap: PC Client TPMs have 24 PCRs.
  writePcrSelectionList(
    w,
    selections.map((s) => pcrSelection(s.hash, s.pcrs)),
  );
}

function readSelection(r: ResponseReader): PcrSelection[] {
  try {
    return readPcrSelectionList(r).map((s) => ({
      hash: HASH_BY_ALG.get(s.hashAlg)!.name,
      pcrs: selectedPcrs(s.select),
    }));
  } catch (err) {
    // An unknown bank in a response is a malformed response, like every other response problem.
    if (err instanceof Tpm2Error) throw new TpmTransportError('RESPONSE_MALFORMED', err.message, err.offset);
    throw err;
  }
}

/**
 * A TPM 2.0 client: one method per command, password or policy authorization, every response checked
 * (frame, response code, parameter bounds). Not safe to share between unrelated callers that both use
 * transient handles: the TPM's object slots are global on simulators without a resource manager.
 */
export class Tpm {
  readonly transport: Transport;

  constructor(transport: Transport) {
    this.transport = transport;
  }

  /** `swtpm:HOST:PORT`, `mssim:HOST:PORT`, or a device path such as `/dev/tpmrm0`. */
  static open(address: string, opts?: TransportOptions): Tpm {
    return new Tpm(openTransport(address, opts));
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  /** Sends a command; returns the response handles and a reader over the parameter area. */
  async run(spec: CommandSpec): Promise<{ handles: number[]; params: ResponseReader }> {
    const auths = spec.auths ?? [];
    const handles = spec.handles ?? [];
    const w = new CommandWriter();
    w.u16(auths.length > 0 ? ST_SESSIONS : ST_NO_SESSIONS)
      .u32(0)
      .u32(spec.code);
    for (const h of handles) w.u32(h);
    if (auths.length > 0) {
      const sizeAt = w.length;
      w.u32(0);
      for (const auth of auths) {
        if (auth.kind === 'password') {
          w.u32(TPM_RH.PW)
            .tpm2b()
            .u8(0)
            .tpm2b(auth.value ?? EMPTY);
        } else {
          // Neither PolicyAuthValue nor PolicyPassword ran: the session needs no HMAC, only a fresh caller nonce.
          w.u32(auth.session)
            .tpm2b(new Uint8Array(randomBytes(16)))
            .u8(auth.continueSession ? 1 : 0)
            .tpm2b();
        }
      }
      w.patchU32(sizeAt, w.length - sizeAt - 4);
    }
    spec.params?.(w);
    w.patchU32(2, w.length);
    const command = w.finish();
    let response = await this.transport.send(command);
    let rc = checkResponseFrame(response);
    // TPM 2.0 Part 1 §6.6: these warnings mean "send the same command again"; the TPM did not execute it.
    for (let attempt = 1; RETRYABLE.has(rc) && attempt <= MAX_RETRIES; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(20 * 2 ** attempt, 1000)));
      response = await this.transport.send(command);
      rc = checkResponseFrame(response);
    }
    if (rc !== 0) throw new TpmResponseError(`TPM2_${spec.name}`, rc);
    const r = new ResponseReader(response, `TPM2_${spec.name} response`, 10);
    const tag = (response[0]! << 8) | response[1]!;
    const outHandles: number[] = [];
    for (let i = 0; i < (spec.responseHandles ?? 0); i++) outHandles.push(r.u32('handle'));
    if (tag === ST_SESSIONS) {
      const at = r.offset;
      const parameterSize = r.u32('parameterSize');
      if (parameterSize > r.remaining) {
        throw new TpmTransportError(
          'RESPONSE_MALFORMED',
          `parameterSize ${parameterSize} exceeds the response`,
          at,
        );
      }
      // Response auth area (nonce, attributes, HMAC per session) follows; password and policy sessions carry no HMAC we need.
      return {
        handles: outHandles,
        params: new ResponseReader(
          response,
          `TPM2_${spec.name} response`,
          r.offset,
          r.offset + parameterSize,
        ),
      };
    }
    return { handles: outHandles, params: r };
  }

  /** TPM2_Startup; a TPM that is already started (TPM_RC_INITIALIZE) is fine. */
  async startup(type: 'clear' | 'state' = 'clear'): Promise<void> {
    try {
      await this.run({ name: 'Startup', code: CC.Startup, params: (w) => w.u16(type === 'clear' ? 0 : 1) });
    } catch (err) {
      if (err instanceof TpmResponseError && err.rc === TPM_RC_INITIALIZE) return;
      throw err;
    }
  }

  /** `count` random bytes; the TPM returns at most a digest's worth per call, so this loops. */
  async getRandom(count: number): Promise<Uint8Array> {
    if (!Number.isInteger(count) || count < 0 || count > 0xffff) throw new RangeError(`bad count ${count}`);
    const out = new Uint8Array(count);
    let have = 0;
    while (have < count) {
      const { params } = await this.run({
        name: 'GetRandom',
        code: CC.GetRandom,
        params: (w) => w.u16(Math.min(count - have, 64)),
      });
      const chunk = params.tpm2b('randomBytes', count - have);
      if (chunk.length === 0)
        throw new TpmTransportError('RESPONSE_MALFORMED', 'GetRandom returned no bytes', 10);
      out.set(chunk, have);
      have += chunk.length;
    }
    return out;
  }

  /** TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES) for one property; undefined if the TPM does not report it. */
  async getTpmProperty(property: number): Promise<number | undefined> {
    const { params } = await this.run({
      name: 'GetCapability',
      code: CC.GetCapability,
      params: (w) => w.u32(6).u32(property).u32(1),
    });
    params.u8('moreData');
    params.u32('capability');
    const count = params.u32('count');
    for (let i = 0; i < count; i++) {
      const p = params.u32('property');
      const v = params.u32('value');
      if (p === property) return v;
    }
    return undefined;
  }

  /** Reads every requested PCR (the TPM returns at most 8 per call, so this repeats with what is left). */
  async pcrRead(selections: PcrSelection[]): Promise<PcrValues> {
    const values = new Map<HashName, Map<number, Uint8Array>>();
    let pending = selections.map((s) => ({ hash: s.hash, pcrs: [...new Set(s.pcrs)].sort((a, b) => a - b) }));
    let updateCounter = 0;
    for (let round = 0; pending.some((s) => s.pcrs.length > 0); round++) {
      if (round > 64) throw new TpmTransportError('RESPONSE_MALFORMED', 'PCR_Read makes no progress', 0);
      const request = pending.filter((s) => s.pcrs.length > 0);
      const { params } = await this.run({
        name: 'PCR_Read',
        code: CC.PCR_Read,
        params: (w) => selectionWriter(w, request),
      });
      updateCounter = params.u32('pcrUpdateCounter');
      const got = readSelection(params);
      const count = params.u32('TPML_DIGEST count');
      const flat = got.flatMap((s) => s.pcrs.map((pcr) => ({ hash: s.hash, pcr })));
      if (count !== flat.length) {
        throw new TpmTransportError(
          'RESPONSE_MALFORMED',
          `${count} digests for ${flat.length} selected PCRs`,
          params.offset,
        );
      }
      if (flat.length === 0) break; // the TPM does not implement what is left (e.g. an inactive bank)
      for (const { hash, pcr } of flat) {
        const digest = params.tpm2b('PCR digest', 64);
        if (digest.length !== HASH_SIZE[hash]) {
          throw new TpmTransportError(
            'RESPONSE_MALFORMED',
            `${hash} PCR ${pcr} digest of ${digest.length} bytes`,
            params.offset,
          );
        }
        let bank = values.get(hash);
        if (bank === undefined) {
          bank = new Map();
          values.set(hash, bank);
        }
        bank.set(pcr, digest);
      }
      pending = pending.map((s) => ({
        hash: s.hash,
        pcrs: s.pcrs.filter((p) => !values.get(s.hash)?.has(p)),
      }));
    }
    return { updateCounter, values };
  }

  async pcrExtend(
    pcr: number,
    digests: { hash: HashName; digest: Uint8Array }[],
    auth: Authorization = PASSWORD,
  ): Promise<void> {
    for (const d of digests) {
      if (d.digest.length !== HASH_SIZE[d.hash])
        throw new RangeError(`${d.hash} digest must be ${HASH_SIZE[d.hash]} bytes`);
    }
    await this.run({
      name: 'PCR_Extend',
      code: CC.PCR_Extend,
      handles: [pcr],
      auths: [auth],
      params: (w) => {
        w.u32(digests.length);
        for (const d of digests) w.u16(HASH_ALG[d.hash]).bytes(d.digest);
      },
    });
  }

  /** TPM2_CreatePrimary under a hierarchy with a marshaled TPMT_PUBLIC template. */
  async createPrimary(
    hierarchy: number,
    template: Uint8Array,
    opts: { auth?: Authorization; userAuth?: Uint8Array } = {},
  ): Promise<CreatedObject> {
    const { handles, params } = await this.run({
      name: 'CreatePrimary',
      code: CC.CreatePrimary,
      handles: [hierarchy],
      auths: [opts.auth ?? PASSWORD],
      responseHandles: 1,
      params: (w) => {
        const userAuth = opts.userAuth ?? EMPTY;
        w.u16(4 + userAuth.length)
          .tpm2b(userAuth)
          .tpm2b(); // TPM2B_SENSITIVE_CREATE
        w.tpm2b(template).tpm2b().u32(0); // inPublic, outsideInfo, creationPCR (none)
      },
    });
    const pub = params.tpm2b('outPublic');
    params.tpm2b('creationData');
    params.tpm2b('creationHash', 64);
    params.u16('creationTicket tag');
    params.u32('creationTicket hierarchy');
    params.tpm2b('creationTicket digest', 64);
    const name = params.tpm2b('name', 66);
    return { handle: handles[0]!, public: pub, name };
  }

  /**
   * The TCG EK in the endorsement hierarchy: 'rsa2048' (L-1, also 'rsa'), 'ecc-p256' (L-2, also 'ecc') or
   * 'ecc-p384' (high-range P-384 with PolicyB, also 'ecc384'; the key swtpm certifies at NV 0x01C00016).
   */
  createEk(
    template: EkTemplateId | 'rsa' | 'ecc' | 'ecc384',
    auth: Authorization = PASSWORD,
  ): Promise<CreatedObject> {
    return this.createPrimary(TPM_RH.ENDORSEMENT, ekTemplateInfo(ekTemplateId(template)).marshaled, { auth });
  }

  /** TPM2_Create: a child key under `parent`, returned as TPM2B_PRIVATE / TPMT_PUBLIC for Load. */
  async create(
    parent: number,
    template: Uint8Array,
    opts: { parentAuth?: Authorization; userAuth?: Uint8Array } = {},
  ): Promise<{ private: Uint8Array; public: Uint8Array }> {
    const { params } = await this.run({
      name: 'Create',
      code: CC.Create,
      handles: [parent],
      auths: [opts.parentAuth ?? PASSWORD],
      params: (w) => {
        const userAuth = opts.userAuth ?? EMPTY;
        w.u16(4 + userAuth.length)
          .tpm2b(userAuth)
          .tpm2b();
        w.tpm2b(template).tpm2b().u32(0);
      },
    });
    const priv = params.tpm2b('outPrivate');
    const pub = params.tpm2b('outPublic');
    return { private: priv, public: pub };
  }

  async load(
    parent: number,
    privateArea: Uint8Array,
    publicArea: Uint8Array,
    parentAuth: Authorization = PASSWORD,
  ): Promise<{ handle: number; name: Uint8Array }> {
    const { handles, params } = await this.run({
      name: 'Load',
      code: CC.Load,
      handles: [parent],
      auths: [parentAuth],
      responseHandles: 1,
      params: (w) => w.tpm2b(privateArea).tpm2b(publicArea),
    });
    return { handle: handles[0]!, name: params.tpm2b('name', 66) };
  }

  async readPublic(
    handle: number,
  ): Promise<{ public: Uint8Array; name: Uint8Array; qualifiedName: Uint8Array }> {
    const { params } = await this.run({ name: 'ReadPublic', code: CC.ReadPublic, handles: [handle] });
    return {
      public: params.tpm2b('outPublic'),
      name: params.tpm2b('name', 66),
      qualifiedName: params.tpm2b('qualifiedName', 66),
    };
  }

  /** TPM2_Quote with the key's own scheme over `selections`, qualified by `nonce`. */
  async quote(
    signHandle: number,
    nonce: Uint8Array,
    selections: PcrSelection[],
    auth: Authorization = PASSWORD,
  ): Promise<AttestationResult> {
    const { params } = await this.run({
      name: 'Quote',
      code: CC.Quote,
      handles: [signHandle],
      auths: [auth],
      params: (w) => {
        w.tpm2b(nonce).u16(0x0010); // inScheme TPM_ALG_NULL: use the AK's scheme
        selectionWriter(w, selections);
      },
    });
    const attest = params.tpm2b('quoted');
    return { attest, signature: params.rest() };
  }

  /** TPM2_Certify: `signHandle` (the AK) attests that `objectHandle` is loaded in this TPM. */
  async certify(
    objectHandle: number,
    signHandle: number,
    nonce: Uint8Array,
    opts: { objectAuth?: Authorization; signAuth?: Authorization } = {},
  ): Promise<AttestationResult> {
    const { params } = await this.run({
      name: 'Certify',
      code: CC.Certify,
      handles: [objectHandle, signHandle],
      auths: [opts.objectAuth ?? PASSWORD, opts.signAuth ?? PASSWORD],
      params: (w) => w.tpm2b(nonce).u16(0x0010),
    });
    const attest = params.tpm2b('certifyInfo');
    return { attest, signature: params.rest() };
  }

  /** An unsalted, unbound policy session; `hash` is its authHash, which must be the nameAlg of the entity it authorizes. */
  async startPolicySession(hash: HashName = 'sha256'): Promise<{ handle: number; nonceTPM: Uint8Array }> {
    const { handles, params } = await this.run({
      name: 'StartAuthSession',
      code: CC.StartAuthSession,
      handles: [TPM_RH.NULL, TPM_RH.NULL],
      responseHandles: 1,
      params: (w) => {
        w.tpm2b(new Uint8Array(randomBytes(32))).tpm2b(); // nonceCaller, encryptedSalt
        w.u8(0x01).u16(0x0010).u16(HASH_ALG[hash]); // TPM_SE_POLICY, symmetric NULL, authHash
      },
    });
    return { handle: handles[0]!, nonceTPM: params.tpm2b('nonceTPM', 64) };
  }

  /** TPM2_PolicySecret: binds the policy session to knowledge of `authHandle`'s authValue (password). */
  async policySecret(authHandle: number, session: number, auth: Authorization = PASSWORD): Promise<void> {
    await this.run({
      name: 'PolicySecret',
      code: CC.PolicySecret,
      handles: [authHandle, session],
      auths: [auth],
      params: (w) => w.tpm2b().tpm2b().tpm2b().i32(0),
    });
  }

  /**
   * TPM2_PolicyOR: if the session's digest is one of `branches`, it becomes H(0…0 ‖ TPM_CC_PolicyOR ‖ branches…);
   * otherwise the TPM answers TPM_RC_VALUE. 2 to 8 branches, each of the session hash's size.
   */
  async policyOr(session: number, branches: readonly Uint8Array[]): Promise<void> {
    if (branches.length < 2 || branches.length > 8) throw new RangeError('PolicyOR takes 2 to 8 branches');
    await this.run({
      name: 'PolicyOR',
      code: CC.PolicyOR,
      handles: [session],
      params: (w) => {
        w.u32(branches.length);
        for (const b of branches) w.tpm2b(b);
      },
    });
  }

  /** TPM2_PolicyGetDigest: the session's current policyDigest. */
  async policyGetDigest(session: number): Promise<Uint8Array> {
    const { params } = await this.run({
      name: 'PolicyGetDigest',
      code: CC.PolicyGetDigest,
      handles: [session],
    });
    return params.tpm2b('policyDigest', 64);
  }

  /**
   * A policy session satisfying a TCG EK's authPolicy. Low range (the default): a SHA-256 session with
   * PolicySecret(TPM_RH_ENDORSEMENT) = PolicyA. High range (e.g. 'ecc-p384'): a session with the EK's nameAlg
   * (SHA-384), PolicySecret(TPM_RH_ENDORSEMENT), then PolicyOR(PolicyA, PolicyC) = PolicyB.
   */
  async ekPolicySession(
    endorsementAuth: Authorization = PASSWORD,
    ek: EkTemplateId | EkPolicy = 'rsa2048',
  ): Promise<number> {
    const policy = typeof ek === 'string' ? ekTemplateInfo(ek).policy : ek;
    const { handle } = await this.startPolicySession(policy.hash);
    try {
      await this.policySecret(TPM_RH.ENDORSEMENT, handle, endorsementAuth);
      if (policy.orBranches !== undefined) await this.policyOr(handle, policy.orBranches);
    } catch (err) {
      await this.flushContext(handle).catch(() => undefined);
      throw err;
    }
    return handle;
  }

  /**
   * TPM2_ActivateCredential: recovers the secret `makeCredential` protected, if `activateHandle` is the
   * object named in it and `keyHandle` the EK it was made for. Both blobs are marshaled TPM2Bs.
   */
  async activateCredential(
    activateHandle: number,
    keyHandle: number,
    credentialBlob: Uint8Array,
    encryptedSecret: Uint8Array,
    auths: { activate: Authorization; key: Authorization },
  ): Promise<Uint8Array> {
    const { params } = await this.run({
      name: 'ActivateCredential',
      code: CC.ActivateCredential,
      handles: [activateHandle, keyHandle],
      auths: [auths.activate, auths.key],
      // The blobs arrive with their size prefix; they go on the wire as they are.
      params: (w) => w.bytes(credentialBlob).bytes(encryptedSecret),
    });
    return params.tpm2b('certInfo', 64);
  }

  /**
   * Which EK policy the loaded EK at `ek` needs, from its public area (authPolicy and nameAlg). An authPolicy that
   * is none of the profile's falls back to PolicyA under SHA-256; the TPM then refuses with TPM_RC_POLICY_FAIL.
   */
  async ekPolicyOf(ek: number): Promise<EkPolicy> {
    const area = (await this.readPublic(ek)).public;
    let pub: ReturnType<typeof unmarshalTpmtPublic>;
    try {
      pub = unmarshalTpmtPublic(area);
    } catch (err) {
      // The TPM's own public area does not parse: a malformed response, like every other response problem.
      if (err instanceof Tpm2Error)
        throw new TpmTransportError('RESPONSE_MALFORMED', err.message, err.offset);
      throw err;
    }
    const hash = HASH_BY_ALG.get(pub.nameAlg)?.name;
    return (hash && ekPolicyFor(pub.authPolicy, hash)) || ekTemplateInfo('rsa2048').policy;
  }

  /**
   * ActivateCredential with a TCG EK: runs the EK's policy session (consumed by the command). The policy is the
   * one of `opts.ekTemplate`, or, when absent, read from the EK's public area (one extra ReadPublic).
   */
  async activateCredentialWithEk(
    ak: number,
    ek: number,
    credentialBlob: Uint8Array,
    encryptedSecret: Uint8Array,
    akAuth: Authorization = PASSWORD,
    opts: { ekTemplate?: EkTemplateId; endorsementAuth?: Authorization } = {},
  ): Promise<Uint8Array> {
    const policy =
      opts.ekTemplate !== undefined ? ekTemplateInfo(opts.ekTemplate).policy : await this.ekPolicyOf(ek);
    const session = await this.ekPolicySession(opts.endorsementAuth ?? PASSWORD, policy);
    try {
      return await this.activateCredential(ak, ek, credentialBlob, encryptedSecret, {
        activate: akAuth,
        key: { kind: 'policy', session },
      });
    } catch (err) {
      // A failed command leaves the session loaded.
      await this.flushContext(session).catch(() => undefined);
      throw err;
    }
  }

  async nvReadPublic(index: number): Promise<NvPublic> {
    const { params } = await this.run({ name: 'NV_ReadPublic', code: CC.NV_ReadPublic, handles: [index] });
    const pub = new ResponseReader(params.tpm2b('nvPublic'), 'TPMS_NV_PUBLIC');
    const result: NvPublic = {
      index: pub.u32('nvIndex'),
      nameAlg: pub.u16('nameAlg'),
      attributes: pub.u32('attributes'),
      authPolicy: pub.tpm2b('authPolicy', 64),
      dataSize: pub.u16('dataSize'),
      name: params.tpm2b('nvName', 66),
    };
    pub.expectEnd();
    return result;
  }

  /** Reads a whole NV index in chunks of at most TPM_PT_NV_BUFFER_MAX bytes. */
  async nvRead(index: number, opts: { authHandle?: number; auth?: Authorization } = {}): Promise<Uint8Array> {
    const { dataSize } = await this.nvReadPublic(index);
    // TPM_PT_NV_BUFFER_MAX; a TPM reporting nonsense still gets a chunk size that makes progress.
    const reported = await this.getTpmProperty(0x12c).catch(() => undefined);
    const chunk = reported !== undefined && reported >= 64 ? Math.min(1024, reported) : 512;
    const out = new Uint8Array(dataSize);
    for (let offset = 0; offset < dataSize; ) {
      const size = Math.min(chunk, dataSize - offset);
      const { params } = await this.run({
        name: 'NV_Read',
        code: CC.NV_Read,
        handles: [opts.authHandle ?? TPM_RH.OWNER, index],
        auths: [opts.auth ?? PASSWORD],
        params: (w) => w.u16(size).u16(offset),
      });
      const data = params.tpm2b('data', size);
      if (data.length !== size) {
        throw new TpmTransportError(
          'RESPONSE_MALFORMED',
          `NV_Read returned ${data.length} of ${size} bytes`,
          10,
        );
      }
      out.set(data, offset);
      offset += size;
    }
    return out;
  }

  /** The DER EK certificate the manufacturer stored in NV, or undefined when the index is not defined. */
  async readEkCertificate(
    alg: keyof typeof EK_CERT_NV_INDEX | EkTemplateId,
  ): Promise<Uint8Array | undefined> {
    try {
      return await this.nvRead(ekTemplateInfo(ekTemplateId(alg)).certIndex);
    } catch (err) {
      if (err instanceof TpmResponseError && err.rcName === 'TPM_RC_HANDLE') return undefined;
      throw err;
    }
  }

  /**
   * The first EK template, in `preference` order, whose manufacturer certificate is in NV, with that certificate:
   * what an agent enrolls with (`createEk(found.ekTemplate)`, then `activateCredentialWithEk`, which picks the
   * matching policy itself). Undefined when the TPM holds none of them.
   */
  async findEkCertificate(
    preference: readonly EkTemplateId[] = ['rsa2048', 'ecc-p256', 'ecc-p384'],
  ): Promise<{ ekTemplate: EkTemplateId; certificate: Uint8Array } | undefined> {
    for (const ekTemplate of preference) {
      const certificate = await this.readEkCertificate(ekTemplate);
      if (certificate !== undefined) return { ekTemplate, certificate };
    }
    return undefined;
  }

  async flushContext(handle: number): Promise<void> {
    await this.run({ name: 'FlushContext', code: CC.FlushContext, params: (w) => w.u32(handle) });
  }
}
