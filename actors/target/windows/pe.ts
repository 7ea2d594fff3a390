/**
 * The machine type of a Windows image, read from its first bytes: enough to choose the Node
 * package (x64 or arm64) for a target from the first 4 KiB of its `System32\kernel32.dll`.
 * Pure and bounded: it reads only inside the buffer it is given and never throws.
 */

/** IMAGE_FILE_MACHINE_* values that sumac knows (PE Format, "COFF File Header", Machine Types). */
export const PeMachine = {
  I386: 0x014c,
  AMD64: 0x8664,
  ARM64: 0xaa64,
} as const;

// PE Format, "MS-DOS Stub (Image Only)": the stub starts with "MZ", and the file offset of the PE
// signature is the 32-bit value at 0x3c (e_lfanew).
const MZ = 0x5a4d;
const E_LFANEW_OFFSET = 0x3c;
// PE Format, "Signature (Image Only)": "PE\0\0", followed at once by the COFF file header whose
// first field is the 16-bit Machine.
const PE_SIGNATURE = 0x00004550;

/**
 * The raw Machine field of the image's COFF header, or undefined when `header` is not the start of
 * a PE image (no `MZ`, e_lfanew pointing past what was read, no `PE\0\0` there).
 */
export function peMachineField(header: Buffer): number | undefined {
  if (header.length < E_LFANEW_OFFSET + 4 || header.readUInt16LE(0) !== MZ) return undefined;
  const peOffset = header.readUInt32LE(E_LFANEW_OFFSET);
  // The signature and Machine (4 + 2 bytes) must lie inside what was read: a value near 2^32 is
  // compared as a number, never used to index.
  if (peOffset + 6 > header.length) return undefined;
  if (header.readUInt32LE(peOffset) !== PE_SIGNATURE) return undefined;
  return header.readUInt16LE(peOffset + 4);
}

/**
 * The architecture of a PE image as Node names it, from its first bytes (4 KiB hold the headers
 * of every system DLL); undefined when it is not a PE image or its machine is another one (ARM32,
 * Itanium...).
 *
 * @example
 * const head = await readFirstBytes("ADMIN$", "System32\\kernel32.dll", 4096);
 * const arch = peMachine(head); // "x64" on most servers
 */
export function peMachine(header: Buffer): "x64" | "arm64" | "x86" | undefined {
  switch (peMachineField(header)) {
    case PeMachine.AMD64:
      return "x64";
    case PeMachine.ARM64:
      return "arm64";
    case PeMachine.I386:
      return "x86";
    default:
      return undefined;
  }
}
