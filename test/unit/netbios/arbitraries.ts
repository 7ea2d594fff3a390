/** fast-check generators of NetBIOS values, shared by the codec tests. */
import fc from "fast-check";
import type { NetbiosName } from "../../../actors/netbios/name.ts";

const latin1 = fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c));

/** Any name the codec carries: latin1, 1 to 15 characters, not ending with the padding space. */
export const nameText: fc.Arbitrary<string> = fc
  .oneof(
    fc.constant("*"),
    fc.string({ unit: latin1, minLength: 1, maxLength: 15 }).filter((s) => !s.endsWith(" ")),
  )
  .filter((s) => s.length > 0);

const label = fc.string({ unit: latin1, minLength: 1, maxLength: 20 }).filter((s) => !s.includes("."));

export const netbiosName: fc.Arbitrary<NetbiosName> = fc.record({
  name: nameText,
  suffix: fc.integer({ min: 0, max: 0xff }),
  scope: fc.oneof(
    fc.constant(""),
    fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join(".")),
  ),
});

export const ipv4: fc.Arbitrary<string> = fc
  .tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))
  .map((p) => p.join("."));
