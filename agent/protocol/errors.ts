/**
 * The base of the agent protocol's errors (STYLE.md item 6): every failure kind is its own class
 * with a stable `code` that machine guards and SOAP faults branch on, and a `retryable` flag that
 * the retry policy reads. Nothing decides by comparing message text.
 *
 * Subclasses fix `code` and `retryable` as literal fields, so `if (err.code === "BAD_MAC")`
 * narrows to the class.
 */
export abstract class AgentProtocolError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    // new.target is the concrete subclass, so stacks and logs name the failure kind.
    this.name = new.target.name;
  }
}
