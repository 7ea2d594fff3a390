/**
 * REnumServicesStatusW's answer (MS-SCMR 3.1.4.14): the NDR stub, and the ENUM_SERVICE_STATUSW
 * records (MS-SCMR 2.2.11) packed in its lpBuffer. Decoders for the client, encoders for fake
 * servers and property tests.
 *
 * lpBuffer is `[out, size_is(cbBufSize)] LPBYTE`: to NDR an opaque byte array, which the server
 * fills as the Win32 EnumServicesStatusW fills its buffer, with one difference. The two string
 * pointers of each record are 32-bit offsets from the start of lpBuffer, not addresses, so a
 * record is 36 bytes (two offsets and a SERVICE_STATUS) whatever the server's pointer size. The
 * strings are NUL-terminated UTF-16LE anywhere after the records (Windows packs them from the end
 * of the buffer down); this decoder follows the offsets and checks each against the buffer.
 */
import { MAX_ENUM_BUFFER_SIZE } from "./constants.ts";
import { expectEnd, readServiceStatus, writeServiceStatus, type ServiceStatus } from "./responses.ts";
import { NdrReader, NdrWriter } from "../rpc/ndr.ts";
import { check, decoding, MalformedPacketError } from "../wire/bytes.ts";

/** One ENUM_SERVICE_STATUSW (MS-SCMR 2.2.11): a service's name, display name and status. */
export interface EnumServiceStatus {
  name: string;
  displayName: string;
  status: ServiceStatus;
}

/** REnumServicesStatusW's [out] parameters and return value, lpBuffer decoded. */
export interface EnumServicesResponse {
  /** The records lpBuffer holds; lpServicesReturned is their number. */
  services: EnumServiceStatus[];
  /** lpBuffer's size on the wire (the cbBufSize asked for; the records may fill less of it). */
  bufferSize: number;
  /** pcbBytesNeeded: with ERROR_MORE_DATA, the bytes the services not yet returned need. */
  bytesNeeded: number;
  /** lpResumeIndex: where the next call goes on from; null when the call sent none. */
  resumeIndex: number | null;
  returnValue: number;
}

/** Bytes of one record: lpServiceName and lpDisplayName as 32-bit offsets, then SERVICE_STATUS. */
export const ENUM_SERVICE_STATUSW_SIZE = 36;
/**
 * The longest name or display name the decoder takes, in UTF-16 units without the NUL. MS-SCMR
 * caps both at 256 characters (3.1.4.12); this is looser, so that one odd display name does not
 * fail a whole enumeration, and still bounds what one offset can make the decoder read.
 */
export const MAX_ENUM_STRING_UNITS = 1024;

const WHAT = "ENUM_SERVICE_STATUSW buffer";

/**
 * The NUL-terminated UTF-16LE string at `offset` of `buffer`. It must start after the records
 * (`floor`: a string inside them is a bad offset), end inside the buffer and be within the cap.
 */
function stringAt(buffer: Buffer, offset: number, floor: number, field: string): string {
  check(
    offset >= floor && offset < buffer.length,
    `${WHAT}: ${field} at offset ${offset}, outside the strings' part (${floor}..${buffer.length})`,
  );
  for (let at = offset, units = 0; at + 2 <= buffer.length; at += 2, units++) {
    if (buffer.readUInt16LE(at) === 0) return buffer.toString("utf16le", offset, at);
    check(units < MAX_ENUM_STRING_UNITS, `${WHAT}: ${field} over the cap of ${MAX_ENUM_STRING_UNITS} units`);
  }
  throw new MalformedPacketError(`${WHAT}: ${field} at offset ${offset} has no NUL before the buffer's end`);
}

/**
 * Decodes the `count` ENUM_SERVICE_STATUSW records at the start of an lpBuffer. The count is
 * checked against the buffer before anything is read, every offset against the buffer.
 */
export function decodeEnumServiceRecords(buffer: Buffer, count: number): EnumServiceStatus[] {
  return decoding(WHAT, () => {
    check(
      Number.isInteger(count) && count >= 0 && count <= Math.floor(buffer.length / ENUM_SERVICE_STATUSW_SIZE),
      `${WHAT}: ${count} records of ${ENUM_SERVICE_STATUSW_SIZE} bytes do not fit in ${buffer.length} bytes`,
    );
    const floor = count * ENUM_SERVICE_STATUSW_SIZE;
    const r = new NdrReader(buffer, WHAT);
    const services: EnumServiceStatus[] = [];
    for (let i = 0; i < count; i++) {
      const nameOffset = r.u32();
      const displayNameOffset = r.u32();
      const status = readServiceStatus(r);
      services.push({
        name: stringAt(buffer, nameOffset, floor, `record ${i}'s service name`),
        displayName: stringAt(buffer, displayNameOffset, floor, `record ${i}'s display name`),
        status,
      });
    }
    return services;
  });
}

function checkEncodable(text: string, field: string): void {
  check(!text.includes("\0"), `${WHAT}: a ${field} with a NUL inside`);
  check(text.length <= MAX_ENUM_STRING_UNITS, `${WHAT}: a ${field} over ${MAX_ENUM_STRING_UNITS} units`);
}

/**
 * Packs records into an lpBuffer, the strings after the records in order, zero-padded to
 * `bufferSize` when given (a server fills cbBufSize bytes).
 */
export function encodeEnumServiceRecords(
  services: readonly EnumServiceStatus[],
  bufferSize?: number,
): Buffer {
  const w = new NdrWriter();
  const strings: string[] = [];
  let at = services.length * ENUM_SERVICE_STATUSW_SIZE;
  for (const s of services) {
    checkEncodable(s.name, "service name");
    checkEncodable(s.displayName, "display name");
    w.u32(at);
    at += (s.name.length + 1) * 2;
    w.u32(at);
    at += (s.displayName.length + 1) * 2;
    writeServiceStatus(w, s.status);
    strings.push(s.name, s.displayName);
  }
  for (const text of strings) w.bytes(Buffer.from(`${text}\0`, "utf16le"));
  const packed = w.toBuffer();
  if (bufferSize === undefined) return packed;
  check(
    bufferSize >= packed.length,
    `${WHAT}: ${packed.length} bytes of records over a buffer of ${bufferSize}`,
  );
  return Buffer.concat([packed, Buffer.alloc(bufferSize - packed.length)]);
}

/**
 * Decodes REnumServicesStatusW's response (MS-SCMR 3.1.4.14): lpBuffer as a conformant byte array
 * (at most `maxBufferSize` bytes: the cbBufSize the call sent), pcbBytesNeeded,
 * lpServicesReturned, the unique lpResumeIndex, the return value; then the records.
 */
export function decodeEnumServicesResponse(
  stub: Buffer,
  maxBufferSize = MAX_ENUM_BUFFER_SIZE,
): EnumServicesResponse {
  const what = "REnumServicesStatusW response";
  return decoding(what, () => {
    const r = new NdrReader(stub, what);
    const buffer = r.conformantBytes(maxBufferSize, "lpBuffer");
    const bytesNeeded = r.u32();
    const servicesReturned = r.u32();
    const resumeIndex = r.uniqueU32() ?? null;
    const returnValue = r.u32();
    expectEnd(r, what);
    const services = decodeEnumServiceRecords(buffer, servicesReturned);
    return { services, bufferSize: buffer.length, bytesNeeded, resumeIndex, returnValue };
  });
}

/** The inverse of {@link decodeEnumServicesResponse}: lpBuffer is `bufferSize` bytes. */
export function encodeEnumServicesResponse(response: EnumServicesResponse): Buffer {
  return new NdrWriter()
    .conformantBytes(encodeEnumServiceRecords(response.services, response.bufferSize))
    .u32(response.bytesNeeded)
    .u32(response.services.length)
    .uniqueU32(response.resumeIndex ?? undefined)
    .u32(response.returnValue)
    .toBuffer();
}
