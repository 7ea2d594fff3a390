import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { oneLine, printable, printableLines, safeJson } from "../../base/text.ts";

/** Every code point a terminal or a reader could be misled by. */
const CONTROLS = [
  ...Array.from({ length: 0x20 }, (_, i) => i),
  0x7f,
  ...Array.from({ length: 0x20 }, (_, i) => 0x80 + i),
  0x061c,
  0x200e,
  0x200f,
  ...[0x202a, 0x202b, 0x202c, 0x202d, 0x202e],
  ...[0x2066, 0x2067, 0x2068, 0x2069],
].map((c) => String.fromCharCode(c));

describe("printable text", () => {
  it("printable text - an OSC 52 clipboard write and a cursor move are shown, not run", () => {
    const hostile = "\x1b]52;c;cm0gLXJmIC8=\x07\x1b[1A\r\x1b[2Kinstall succeeded";
    assert.equal(printable(hostile), "\\x1b]52;c;cm0gLXJmIC8=\\x07\\x1b[1A\\x0d\\x1b[2Kinstall succeeded");
  });

  it("printable text - C1 and bidirectional controls become \\u escapes", () => {
    assert.equal(printable("a\u009b2Jb"), "a\\u009b2Jb");
    assert.equal(
      printable("\u202eexe.txt\u2066x\u2069\u200e\u061c"),
      "\\u202eexe.txt\\u2066x\\u2069\\u200e\\u061c",
    );
  });

  it("printable text - no control character is left, whichever it is", () => {
    for (const c of CONTROLS) {
      const out = printable(`a${c}b`);
      assert.doesNotMatch(
        out,
        /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/,
        JSON.stringify(c),
      );
      assert.ok(out.length > 2, `U+${c.charCodeAt(0).toString(16)} vanished`);
    }
  });

  it("printable text - plain text, accents, emoji and backslashes pass unchanged; a tab is a space", () => {
    const plain = "Größe 3 MB ✓ 🚀 C:\\temp\\x1b é";
    assert.equal(printable(plain), plain);
    assert.equal(printable("a\tb"), "a b");
  });

  it("printable text - oneLine escapes the same and cuts long text, saying how much", () => {
    assert.equal(oneLine("\u009b\n", 100), "\\u009b\\x0a");
    assert.equal(oneLine("x".repeat(10), 4), "xxxx…[6 more]");
  });

  it("printable text - printableLines keeps the line breaks (CRLF too) and escapes the rest", () => {
    assert.equal(printableLines("a\x1b[2J\r\nb\u009b\n\nc"), "a\\x1b[2J\nb\\u009b\n\nc");
  });

  it("printable text - safeJson escapes DEL, C1 and format controls and still parses to the same value", () => {
    const value = { line: `a\x1b[1A\x7f\u009b\u202e\u2028b`, n: 1 };
    const json = safeJson(value);
    assert.doesNotMatch(json, /[\u0000-\u001f\u007f-\u009f\u2028\u202e]/);
    assert.match(json, /\\u009b/);
    assert.match(json, /\\u202e/);
    assert.match(json, /\\u007f/);
    assert.deepEqual(JSON.parse(json), value);
    assert.deepEqual(JSON.parse(safeJson(value, 2)), value);
  });
});
