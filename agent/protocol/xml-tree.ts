/**
 * A small, strict XML reader for SOAP messages, over `sax` (which `soap` uses too): well-formedness
 * errors, DOCTYPE and ENTITY declarations and excessive depth are refused with stable codes before
 * anything else reads the text. It never expands entities beyond XML's five predefined ones and
 * numeric references, and never fetches anything.
 */
import sax from "sax";
import { MalformedXmlError, XmlForbiddenError } from "./errors.ts";

/** An element: namespace URI, local name, child elements, and its text (concatenated). */
export interface XmlElement {
  readonly uri: string;
  readonly local: string;
  readonly children: XmlElement[];
  text: string;
}

const MAX_DEPTH = 32;
const MAX_ELEMENTS = 100_000;
/** Declarations that define or pull in entities: the billion laughs and XXE both need one. */
const FORBIDDEN = /<!\s*(?:DOCTYPE|ENTITY)/i;

/**
 * Parses `xml` into a tree.
 *
 * @throws XmlForbiddenError on a DOCTYPE or ENTITY declaration.
 * @throws MalformedXmlError when it is not well-formed, nests deeper than 32 or has over 100k elements.
 */
export function parseXmlTree(xml: string): XmlElement {
  // Scanned before parsing, so the answer does not depend on how far the parser got.
  if (FORBIDDEN.test(xml)) throw new XmlForbiddenError("DOCTYPE and ENTITY declarations are refused");
  const parser = sax.parser(true, { xmlns: true, position: true });
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let count = 0;
  let failure: Error | undefined;

  parser.onerror = (error) => {
    failure ??= new MalformedXmlError(`not well-formed XML: ${error.message.split("\n")[0] ?? ""}`);
  };
  parser.ondoctype = () => {
    failure ??= new XmlForbiddenError("DOCTYPE declarations are refused");
  };
  parser.onopentag = (tag) => {
    const node = tag as sax.QualifiedTag;
    const element: XmlElement = { uri: node.uri, local: node.local, children: [], text: "" };
    if (++count > MAX_ELEMENTS) failure ??= new MalformedXmlError(`more than ${MAX_ELEMENTS} elements`);
    if (stack.length >= MAX_DEPTH)
      failure ??= new MalformedXmlError(`elements nested deeper than ${MAX_DEPTH}`);
    const parent = stack.at(-1);
    if (parent === undefined) root = element;
    else parent.children.push(element);
    stack.push(element);
  };
  parser.onclosetag = () => {
    stack.pop();
  };
  const onText = (text: string) => {
    const top = stack.at(-1);
    if (top !== undefined) top.text += text;
    else if (text.trim() !== "") failure ??= new MalformedXmlError("text outside the root element");
  };
  parser.ontext = onText;
  parser.oncdata = onText;

  try {
    parser.write(xml).close();
  } catch (cause) {
    // sax throws from write() when onerror leaves the error unresumed.
    failure ??= new MalformedXmlError(`not well-formed XML: ${String(cause)}`, { cause });
  }
  if (failure !== undefined) throw failure;
  if (root === undefined) throw new MalformedXmlError("no root element");
  return root;
}

/** The first child element named `local`, if any. */
export function childElement(element: XmlElement, local: string): XmlElement | undefined {
  return element.children.find((c) => c.local === local);
}
