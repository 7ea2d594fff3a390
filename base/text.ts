/**
 * Text that came from elsewhere (a target's command output, a peer's name, an error message), made
 * safe to write into a log line, onto an operator's terminal or into JSON that a terminal may show.
 */

/**
 * The characters that can drive a terminal or change how a line reads: C0 controls, DEL, C1
 * controls (a terminal in UTF-8 takes U+009B as CSI, U+009D as OSC), the line and paragraph
 * separators, and the bidirectional and other invisible format controls (U+061C, U+200B–U+200F,
 * U+202A–U+202E, U+2060–U+2069, U+FEFF) that can make a line read other than it is.
 */
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
/** The same beyond what JSON.stringify already escapes (C0 controls). */
const JSON_RAW = /[\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

const hex = (c: string, width: number): string => c.charCodeAt(0).toString(16).padStart(width, "0");

/**
 * Untrusted text as one printable line: a tab becomes a space, every other control character its
 * visible escape, `\x1b` for C0 and DEL, `\u009b` for the rest; nothing else changes.
 *
 * @example printable("\x1b]52;c;aGk=\x07") === "\\x1b]52;c;aGk=\\x07"
 */
export function printable(text: string): string {
  return text.replace(CONTROLS, (c) => {
    if (c === "\t") return " ";
    const code = c.charCodeAt(0);
    return code < 0x80 ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`;
  });
}

/**
 * Untrusted text of many lines (a log file from a target) with {@link printable} applied to each
 * line: the line breaks stay, every other control character is escaped.
 */
export function printableLines(text: string): string {
  return text
    .split("\n")
    .map((line) => printable(line.endsWith("\r") ? line.slice(0, -1) : line))
    .join("\n");
}

/**
 * {@link printable}, cut past `max` characters, saying how much was left out: so that nothing a
 * peer or a command sends can forge a log line of its own or drive a terminal.
 */
export function oneLine(text: string, max = 4096): string {
  return clip(printable(text), max);
}

/** `text` cut to `max` characters with a visible marker of how many more there were. */
export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…[${text.length - max} more]` : text;
}

/** The first line of a tool's complaint, for error messages (never the whole output). */
export function firstLine(s: string): string {
  const line = s.trim().split(/\r?\n/, 1)[0] ?? "";
  return line.length > 300 ? `${line.slice(0, 300)}...` : line;
}

/**
 * `JSON.stringify`, with DEL, the C1 controls and the format controls escaped as `\u00XX` too
 * (JSON.stringify leaves them raw): the JSON means the same, and a terminal showing it is not
 * driven by it.
 */
export function safeJson(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(JSON_RAW, (c) => `\\u${hex(c, 4)}`);
}
