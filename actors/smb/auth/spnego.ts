/**
 * SPNEGO's tokens (RFC 4178 4.2, with MS-SPNG 2.2 for Windows' NegTokenInit2): the client's
 * NegTokenInit inside GSS-API's InitialContextToken (RFC 2743 3.1), the NegTokenResp both sides send
 * after it, and the server's NegTokenInit2 hint in its SMB2 NEGOTIATE response, which lists the
 * mechanisms it accepts.
 */
import { check, decoding } from "../../wire/bytes.ts";
import { contextTag, decodeOid, derOid, DerReader, DerTag, derTlv } from "./der.ts";

/** The OIDs SMB servers offer. */
export const MechOid = {
  SPNEGO: "1.3.6.1.5.5.2",
  NTLMSSP: "1.3.6.1.4.1.311.2.2.10",
  KERBEROS: "1.2.840.113554.1.2.2",
  /** Windows' Kerberos OID with the historical typo, offered first by Windows servers. */
  MS_KERBEROS: "1.2.840.48018.1.2.2",
} as const;

/** negState (RFC 4178 4.2.2). */
export const NegState = {
  ACCEPT_COMPLETED: 0,
  ACCEPT_INCOMPLETE: 1,
  REJECT: 2,
  REQUEST_MIC: 3,
} as const;

/** NegTokenInit (RFC 4178 4.2.1), or MS-SPNG's NegTokenInit2 when `hintName` is set. */
export interface NegTokenInit {
  readonly mechTypes: readonly string[];
  readonly mechToken?: Buffer;
  readonly mechListMIC?: Buffer;
  /** NegTokenInit2's negHints.hintName (MS-SPNG 2.2.1); Samba sends "not_defined_in_RFC4178@please_ignore". */
  readonly hintName?: string;
}

/** NegTokenResp (RFC 4178 4.2.2). */
export interface NegTokenResp {
  readonly negState?: number;
  readonly supportedMech?: string;
  readonly responseToken?: Buffer;
  readonly mechListMIC?: Buffer;
}

const MAX_MECH_TYPES = 16;

/** The DER of a MechTypeList, which is what the mechListMIC signs (RFC 4178 5 b). */
export function encodeMechTypeList(mechTypes: readonly string[]): Buffer {
  check(mechTypes.length > 0 && mechTypes.length <= MAX_MECH_TYPES, "SPNEGO: 1 to 16 mechanisms");
  return derTlv(DerTag.SEQUENCE, ...mechTypes.map(derOid));
}

const optionalTlv = (tag: number, content: Buffer | undefined): Buffer[] =>
  content === undefined ? [] : [derTlv(tag, content)];

/** The NegTokenInit in its InitialContextToken, as a client's first SESSION_SETUP carries it. */
export function encodeNegTokenInit(t: NegTokenInit): Buffer {
  const fields = [
    derTlv(contextTag(0), encodeMechTypeList(t.mechTypes)),
    ...optionalTlv(contextTag(2), t.mechToken && derTlv(DerTag.OCTET_STRING, t.mechToken)),
  ];
  if (t.hintName === undefined) {
    fields.push(...optionalTlv(contextTag(3), t.mechListMIC && derTlv(DerTag.OCTET_STRING, t.mechListMIC)));
  } else {
    const hint = derTlv(contextTag(0), derTlv(DerTag.GENERAL_STRING, Buffer.from(t.hintName, "latin1")));
    fields.push(derTlv(contextTag(3), derTlv(DerTag.SEQUENCE, hint)));
    fields.push(...optionalTlv(contextTag(4), t.mechListMIC && derTlv(DerTag.OCTET_STRING, t.mechListMIC)));
  }
  const negTokenInit = derTlv(contextTag(0), derTlv(DerTag.SEQUENCE, ...fields));
  return derTlv(DerTag.APPLICATION_0, derOid(MechOid.SPNEGO), negTokenInit);
}

function readMechTypes(outer: DerReader): string[] {
  const list = outer.enter(contextTag(0), "mechTypes").enter(DerTag.SEQUENCE, "MechTypeList");
  const mechTypes: string[] = [];
  while (!list.done) {
    check(mechTypes.length < MAX_MECH_TYPES, `SPNEGO: more than ${MAX_MECH_TYPES} mechanisms`);
    mechTypes.push(decodeOid(list.read(DerTag.OBJECT_IDENTIFIER, "MechType")));
  }
  list.end();
  check(mechTypes.length > 0, "SPNEGO: an empty MechTypeList");
  return mechTypes;
}

const octets = (r: DerReader, content: Buffer | undefined, field: string): Buffer | undefined => {
  if (content === undefined) return undefined;
  const inner = r.inside(content);
  const value = Buffer.from(inner.read(DerTag.OCTET_STRING, field));
  inner.end();
  return value;
};

/** Decodes a NegTokenInit or NegTokenInit2 in its InitialContextToken. */
export function decodeNegTokenInit(token: Buffer): NegTokenInit {
  return decoding("SPNEGO NegTokenInit", () => {
    const top = new DerReader(token, "SPNEGO NegTokenInit");
    const app = top.enter(DerTag.APPLICATION_0, "InitialContextToken");
    top.end();
    const oid = decodeOid(app.read(DerTag.OBJECT_IDENTIFIER, "thisMech"));
    check(oid === MechOid.SPNEGO, `SPNEGO NegTokenInit: mechanism ${oid}, not SPNEGO`);
    const seq = app.enter(contextTag(0), "negTokenInit").enter(DerTag.SEQUENCE, "NegTokenInit");
    app.end();
    const mechTypes = readMechTypes(seq);
    seq.optional(contextTag(1)); // reqFlags: RFC 4178 says to ignore them.
    const mechToken = octets(seq, seq.optional(contextTag(2)), "mechToken");
    let hintName: string | undefined;
    let mechListMIC: Buffer | undefined;
    const three = seq.optional(contextTag(3));
    if (three !== undefined && three[0] === DerTag.SEQUENCE) {
      // MS-SPNG 2.2.1: NegTokenInit2's negHints, then the mechListMIC as [4].
      const hints = seq.inside(three).enter(DerTag.SEQUENCE, "negHints");
      const name = hints.optional(contextTag(0));
      if (name !== undefined) {
        const inner = hints.inside(name);
        hintName = inner.read(DerTag.GENERAL_STRING, "hintName").toString("latin1");
        inner.end();
      }
      hints.optional(contextTag(1)); // hintAddress
      hints.end();
      mechListMIC = octets(seq, seq.optional(contextTag(4)), "mechListMIC");
    } else {
      mechListMIC = octets(seq, three, "mechListMIC");
    }
    seq.end();
    return {
      mechTypes,
      ...(mechToken === undefined ? {} : { mechToken }),
      ...(mechListMIC === undefined ? {} : { mechListMIC }),
      ...(hintName === undefined ? {} : { hintName }),
    };
  });
}

/**
 * The mechanisms a server offers in the security buffer of its SMB2 NEGOTIATE response (MS-SMB2
 * 3.3.5.4: a NegTokenInit2), or undefined when the buffer is empty, which leaves the choice to the
 * client (MS-SMB2 3.2.5.2).
 */
export function serverMechanisms(securityBuffer: Buffer): readonly string[] | undefined {
  if (securityBuffer.length === 0) return undefined;
  return decodeNegTokenInit(securityBuffer).mechTypes;
}

/** Encodes a NegTokenResp, as the choice [1] of NegotiationToken. */
export function encodeNegTokenResp(t: NegTokenResp): Buffer {
  const fields = [
    ...optionalTlv(
      contextTag(0),
      t.negState === undefined ? undefined : derTlv(DerTag.ENUMERATED, Buffer.from([t.negState])),
    ),
    ...optionalTlv(contextTag(1), t.supportedMech === undefined ? undefined : derOid(t.supportedMech)),
    ...optionalTlv(contextTag(2), t.responseToken && derTlv(DerTag.OCTET_STRING, t.responseToken)),
    ...optionalTlv(contextTag(3), t.mechListMIC && derTlv(DerTag.OCTET_STRING, t.mechListMIC)),
  ];
  check(t.negState === undefined || (t.negState >= 0 && t.negState <= 3), "SPNEGO: a negState outside 0..3");
  return derTlv(contextTag(1), derTlv(DerTag.SEQUENCE, ...fields));
}

/** Decodes a NegTokenResp. */
export function decodeNegTokenResp(token: Buffer): NegTokenResp {
  return decoding("SPNEGO NegTokenResp", () => {
    const top = new DerReader(token, "SPNEGO NegTokenResp");
    const seq = top.enter(contextTag(1), "negTokenResp").enter(DerTag.SEQUENCE, "NegTokenResp");
    top.end();
    let negState: number | undefined;
    const state = seq.optional(contextTag(0));
    if (state !== undefined) {
      const inner = seq.inside(state);
      const value = inner.read(DerTag.ENUMERATED, "negState");
      inner.end();
      check(value.length === 1 && (value[0] as number) <= 3, "SPNEGO NegTokenResp: negState outside 0..3");
      negState = value[0];
    }
    let supportedMech: string | undefined;
    const mech = seq.optional(contextTag(1));
    if (mech !== undefined) {
      const inner = seq.inside(mech);
      supportedMech = decodeOid(inner.read(DerTag.OBJECT_IDENTIFIER, "supportedMech"));
      inner.end();
    }
    const responseToken = octets(seq, seq.optional(contextTag(2)), "responseToken");
    const mechListMIC = octets(seq, seq.optional(contextTag(3)), "mechListMIC");
    seq.end();
    return {
      ...(negState === undefined ? {} : { negState }),
      ...(supportedMech === undefined ? {} : { supportedMech }),
      ...(responseToken === undefined ? {} : { responseToken }),
      ...(mechListMIC === undefined ? {} : { mechListMIC }),
    };
  });
}
