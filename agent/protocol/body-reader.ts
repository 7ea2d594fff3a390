/**
 * Reading a request body with a cap, before anything parses it: `soap` itself buffers whole bodies
 * with no limit. A declared Content-Length over the cap is refused before a byte is read; a body
 * without one (chunked) is counted while it arrives and refused the moment it passes the cap, so
 * the agent never holds more than the cap.
 */
import type { IncomingMessage } from "node:http";
import { BodyTooLargeError } from "./errors.ts";

/** Default cap of a request body: 1 MiB (bulk data travels over the push channel, not SOAP). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/**
 * The whole body of `req`, at most `maxBytes`.
 *
 * @throws BodyTooLargeError as soon as the body is known to be larger; the caller answers 413 and
 * closes the connection (the rest of the body is never read).
 */
export function readCappedBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers["content-length"];
    if (declared !== undefined && Number(declared) > maxBytes) {
      reject(new BodyTooLargeError(`Content-Length ${declared} is over the ${maxBytes}-byte cap`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > maxBytes) {
        cleanup();
        req.pause();
        chunks.length = 0;
        reject(new BodyTooLargeError(`body passed the ${maxBytes}-byte cap while arriving`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}
