/**
 * Text that came from elsewhere (a target's command output, a peer's name, an error message), made
 * safe to write into a log line or onto an operator's terminal.
 */

/**
 * Makes untrusted text one printable line: control characters become `\xNN` (a tab a space), so
 * that nothing a peer or a command sends can forge a log line of its own or drive a terminal; past
 * `max` characters it is cut, saying how much was left out.
 */
export function oneLine(text: string, max = 4096): string {
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, (c) =>
    c === "\t" ? " " : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
  return clean.length > max ? `${clean.slice(0, max)}…[${clean.length - max} more]` : clean;
}
