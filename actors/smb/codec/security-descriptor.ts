/**
 * Self-relative security descriptors (MS-DTYP 2.4.6), the buffer of QUERY_INFO and SET_INFO with
 * InfoType SECURITY (MS-SMB2 2.2.37, 2.2.39; MS-FSCC 2.4 leaves the format to MS-DTYP): owner and
 * group SIDs (2.4.2.2), and ACLs (2.4.5) of ACCESS_ALLOWED and ACCESS_DENIED ACEs (2.4.4.2,
 * 2.4.4.4). ACEs of other types are kept as their bytes, so that a descriptor read from a server
 * can be shown and compared whole; sumac only ever writes the two simple types.
 *
 * The encoder lays the parts out as Windows does (SACL, DACL, owner, group, after the 20-byte
 * header); the decoder follows the offsets, whatever their order.
 */
import { ByteReader, ByteWriter, check, decoding } from "../../wire/bytes.ts";
import { readSid, sidLength, WellKnownSid, writeSid } from "./sid.ts";

export { canonicalSid, decodeSid, encodeSid, isSid, WellKnownSid } from "./sid.ts";

/** SECURITY_DESCRIPTOR Control flags (MS-DTYP 2.4.6). */
export const SdControl = {
  OWNER_DEFAULTED: 0x0001,
  GROUP_DEFAULTED: 0x0002,
  DACL_PRESENT: 0x0004,
  DACL_DEFAULTED: 0x0008,
  SACL_PRESENT: 0x0010,
  SACL_DEFAULTED: 0x0020,
  DACL_TRUSTED: 0x0040,
  SERVER_SECURITY: 0x0080,
  DACL_AUTO_INHERIT_REQ: 0x0100,
  SACL_AUTO_INHERIT_REQ: 0x0200,
  DACL_AUTO_INHERITED: 0x0400,
  SACL_AUTO_INHERITED: 0x0800,
  DACL_PROTECTED: 0x1000,
  SACL_PROTECTED: 0x2000,
  RM_CONTROL_VALID: 0x4000,
  SELF_RELATIVE: 0x8000,
} as const;

/** The Control bits the descriptor's own shape says; {@link SecurityDescriptor.control} holds the rest. */
const IMPLIED = SdControl.DACL_PRESENT | SdControl.SACL_PRESENT | SdControl.SELF_RELATIVE;

/**
 * SECURITY_INFORMATION (MS-DTYP 2.4.7): which parts a QUERY_INFO or SET_INFO of security reads or
 * writes (the AdditionalInformation of MS-SMB2 2.2.37 and 2.2.39).
 */
export const SecurityInformation = {
  OWNER: 0x00000001,
  GROUP: 0x00000002,
  DACL: 0x00000004,
  SACL: 0x00000008,
  LABEL: 0x00000010,
  UNPROTECTED_SACL: 0x10000000,
  UNPROTECTED_DACL: 0x20000000,
  PROTECTED_SACL: 0x40000000,
  PROTECTED_DACL: 0x80000000,
} as const;

/** AceType values (MS-DTYP 2.4.4.1) sumac reads and writes as such. */
export const AceType = { ACCESS_ALLOWED: 0x00, ACCESS_DENIED: 0x01 } as const;

/** AceFlags (MS-DTYP 2.4.4.1). */
export const AceFlag = {
  OBJECT_INHERIT: 0x01,
  CONTAINER_INHERIT: 0x02,
  NO_PROPAGATE_INHERIT: 0x04,
  INHERIT_ONLY: 0x08,
  INHERITED: 0x10,
  SUCCESSFUL_ACCESS: 0x40,
  FAILED_ACCESS: 0x80,
} as const;

/** FILE_ALL_ACCESS: every file-specific right (0x1FF) and the standard rights DELETE to SYNCHRONIZE (MS-SMB2 2.2.13.1.1). */
export const FILE_ALL_ACCESS = 0x001f01ff;

/** ACL_REVISION and ACL_REVISION_DS (MS-DTYP 2.4.5). */
export const AclRevision = { NT4: 2, DS: 4 } as const;

/** An ACCESS_ALLOWED_ACE or ACCESS_DENIED_ACE (MS-DTYP 2.4.4.2, 2.4.4.4). */
export interface AccessAce {
  readonly type: "allowed" | "denied";
  /** {@link AceFlag} bits. */
  readonly flags: number;
  readonly mask: number;
  readonly sid: string;
}

/** An ACE of any other type (object, callback, audit, label...), kept as its bytes after the header. */
export interface OtherAce {
  readonly type: "other";
  readonly aceType: number;
  readonly flags: number;
  readonly body: Buffer;
}

export type Ace = AccessAce | OtherAce;

/** An ACL (MS-DTYP 2.4.5). */
export interface Acl {
  /** 2 ({@link AclRevision}.NT4) for ACLs of the simple ACE types, 4 when object ACEs are in it. */
  readonly revision: number;
  readonly aces: readonly Ace[];
}

/** A security descriptor: what of it a server returned or a client sets. */
export interface SecurityDescriptor {
  /**
   * {@link SdControl} bits other than DACL_PRESENT, SACL_PRESENT and SELF_RELATIVE, which follow
   * from `dacl`, `sacl` and the form (always self-relative here).
   */
  readonly control: number;
  readonly owner?: string;
  readonly group?: string;
  /** Absent: not in the descriptor. `null`: a NULL ACL (present without a body: all access). */
  readonly sacl?: Acl | null;
  readonly dacl?: Acl | null;
}

const HEADER = 20;
const ACL_HEADER = 8;
const ACE_HEADER = 4;
/** An ACE of the two access types: header, mask, then the SID. */
const ACCESS_ACE_FIXED = ACE_HEADER + 4;
/** AclSize and AceSize are 16-bit (MS-DTYP 2.4.5, 2.4.4.1). */
const ACL_MAX = 0xffff;
/** A descriptor is at most header, two ACLs and two SIDs of 15 subauthorities. */
export const SECURITY_DESCRIPTOR_MAX = HEADER + 2 * ACL_MAX + 2 * (8 + 4 * 15);

function aceSize(ace: Ace): number {
  return ace.type === "other" ? ACE_HEADER + ace.body.length : ACCESS_ACE_FIXED + sidLength(ace.sid);
}

function aclSize(acl: Acl): number {
  return acl.aces.reduce((n, ace) => n + aceSize(ace), ACL_HEADER);
}

function writeAcl(w: ByteWriter, acl: Acl): void {
  const size = aclSize(acl);
  check(size <= ACL_MAX, `an ACL of ${size} bytes, over ${ACL_MAX}`);
  check(acl.revision === AclRevision.NT4 || acl.revision === AclRevision.DS, `ACL revision ${acl.revision}`);
  w.u8(acl.revision).u8(0).u16le(size).u16le(acl.aces.length).u16le(0);
  for (const ace of acl.aces) {
    check(Number.isInteger(ace.flags) && ace.flags >= 0 && ace.flags <= 0xff, `ACE flags ${ace.flags}`);
    if (ace.type === "other") {
      check(
        ace.aceType !== AceType.ACCESS_ALLOWED && ace.aceType !== AceType.ACCESS_DENIED,
        "an ACE kept as bytes is of an access type",
      );
      w.u8(ace.aceType).u8(ace.flags).u16le(aceSize(ace)).bytes(ace.body);
    } else {
      check(Number.isInteger(ace.mask) && ace.mask >= 0 && ace.mask <= 0xffffffff, `ACE mask ${ace.mask}`);
      const type = ace.type === "allowed" ? AceType.ACCESS_ALLOWED : AceType.ACCESS_DENIED;
      w.u8(type).u8(ace.flags).u16le(aceSize(ace)).u32le(ace.mask);
      writeSid(w, ace.sid);
    }
  }
}

function readAcl(buffer: Buffer, offset: number, what: string): Acl {
  const r = new ByteReader(buffer, what, offset);
  const revision = r.u8();
  check(revision === AclRevision.NT4 || revision === AclRevision.DS, `${what}: revision ${revision}`);
  r.skip(1, "Sbz1");
  const size = r.u16le();
  const count = r.u16le();
  r.skip(2, "Sbz2");
  check(size >= ACL_HEADER && offset + size <= buffer.length, `${what}: AclSize ${size} goes past the end`);
  check(count * ACE_HEADER <= size - ACL_HEADER, `${what}: ${count} ACEs cannot fit in ${size} bytes`);
  // Every ACE is read from the ACL's own bytes: none may reach past AclSize.
  const acl = new ByteReader(buffer.subarray(offset, offset + size), what, ACL_HEADER);
  const aces: Ace[] = [];
  for (let i = 0; i < count; i++) {
    const aceType = acl.u8();
    const flags = acl.u8();
    const length = acl.u16le();
    check(
      length >= ACE_HEADER && length - ACE_HEADER <= acl.remaining,
      `${what}: ACE ${i} of ${length} bytes`,
    );
    const body = new ByteReader(acl.bytes(length - ACE_HEADER, "ACE"), `${what} ACE ${i}`);
    if (aceType === AceType.ACCESS_ALLOWED || aceType === AceType.ACCESS_DENIED) {
      const mask = body.u32le();
      // Bytes after the SID, up to AceSize, carry nothing (MS-DTYP 2.4.4.2).
      const sid = readSid(body);
      aces.push({ type: aceType === AceType.ACCESS_ALLOWED ? "allowed" : "denied", flags, mask, sid });
    } else {
      aces.push({ type: "other", aceType, flags, body: Buffer.from(body.buffer) });
    }
  }
  return { revision, aces };
}

/** Encodes a self-relative SECURITY_DESCRIPTOR (MS-DTYP 2.4.6). */
export function encodeSecurityDescriptor(sd: SecurityDescriptor): Buffer {
  check(
    Number.isInteger(sd.control) && sd.control >= 0 && sd.control <= 0xffff && (sd.control & IMPLIED) === 0,
    `security descriptor control 0x${sd.control.toString(16)}: DACL_PRESENT, SACL_PRESENT and SELF_RELATIVE follow from the descriptor`,
  );
  const control =
    sd.control |
    SdControl.SELF_RELATIVE |
    (sd.dacl !== undefined ? SdControl.DACL_PRESENT : 0) |
    (sd.sacl !== undefined ? SdControl.SACL_PRESENT : 0);
  const w = new ByteWriter(256).u8(1).u8(0).u16le(control);
  const offsets = w.length;
  w.zeros(16);
  let sacl = 0;
  let dacl = 0;
  let owner = 0;
  let group = 0;
  if (sd.sacl) {
    sacl = w.length;
    writeAcl(w, sd.sacl);
  }
  if (sd.dacl) {
    dacl = w.length;
    writeAcl(w, sd.dacl);
  }
  if (sd.owner !== undefined) {
    owner = w.length;
    writeSid(w, sd.owner);
  }
  if (sd.group !== undefined) {
    group = w.length;
    writeSid(w, sd.group);
  }
  return w
    .patchU32le(offsets, owner)
    .patchU32le(offsets + 4, group)
    .patchU32le(offsets + 8, sacl)
    .patchU32le(offsets + 12, dacl)
    .toBuffer();
}

/** Decodes a self-relative SECURITY_DESCRIPTOR; anything but one is MALFORMED_PACKET. */
export function decodeSecurityDescriptor(buffer: Buffer): SecurityDescriptor {
  return decoding("security descriptor", () => {
    const what = "security descriptor";
    check(buffer.length <= SECURITY_DESCRIPTOR_MAX, `${what}: ${buffer.length} bytes, over its cap`);
    const r = new ByteReader(buffer, what);
    const revision = r.u8();
    check(revision === 1, `${what}: revision ${revision}, not 1`);
    r.skip(1, "Sbz1");
    const control = r.u16le();
    check((control & SdControl.SELF_RELATIVE) !== 0, `${what}: not self-relative`);
    const [ownerAt, groupAt, saclAt, daclAt] = [r.u32le(), r.u32le(), r.u32le(), r.u32le()];
    for (const at of [ownerAt, groupAt, saclAt, daclAt])
      check(
        at === 0 || (at >= HEADER && at < buffer.length),
        `${what}: an offset ${at} outside the descriptor`,
      );
    const sid = (at: number, field: string): string =>
      readSid(new ByteReader(buffer, `${what} ${field}`, at));
    const acl = (present: number, at: number, field: string): Acl | null | undefined => {
      if ((control & present) === 0) return undefined;
      return at === 0 ? null : readAcl(buffer, at, `${what} ${field}`);
    };
    const owner = ownerAt === 0 ? undefined : sid(ownerAt, "owner");
    const group = groupAt === 0 ? undefined : sid(groupAt, "group");
    const sacl = acl(SdControl.SACL_PRESENT, saclAt, "SACL");
    const dacl = acl(SdControl.DACL_PRESENT, daclAt, "DACL");
    return {
      control: control & ~IMPLIED,
      ...(owner !== undefined ? { owner } : {}),
      ...(group !== undefined ? { group } : {}),
      ...(sacl !== undefined ? { sacl } : {}),
      ...(dacl !== undefined ? { dacl } : {}),
    };
  });
}

/**
 * The DACL sumac gives a directory of its own: full control to SYSTEM and to the Administrators
 * group, inherited by every file and subdirectory, and (set with PROTECTED_DACL) nothing from
 * the parent.
 */
export function privateDirectoryDacl(): Acl {
  const flags = AceFlag.OBJECT_INHERIT | AceFlag.CONTAINER_INHERIT;
  const full = (sid: string): AccessAce => ({ type: "allowed", flags, mask: FILE_ALL_ACCESS, sid });
  return {
    revision: AclRevision.NT4,
    aces: [full(WellKnownSid.LOCAL_SYSTEM), full(WellKnownSid.BUILTIN_ADMINISTRATORS)],
  };
}
