// The little markdown a description's line may carry: `code`, *emphasis*, **strong** (and _x_, __x__).
// Built from text nodes inside <code>, <em> and <strong>: the text is never parsed as HTML.

import { el } from "./dom.ts";

/** Code first (nothing inside it is emphasis), then strong before emphasis. */
const INLINE = /`([^`]+)`|\*\*(?=\S)(.+?)\*\*|__(?=\S)(.+?)__|\*(?=[^\s*])(.+?)\*|\b_(?=\S)(.+?)_\b/gu;

export function inlineMarkup(text: string): (Node | string)[] {
  const parts: (Node | string)[] = [];
  let shown = 0;
  for (const match of text.matchAll(INLINE)) {
    const [whole, code, strong, strongUnder, em, emUnder] = match;
    if (match.index > shown) parts.push(text.slice(shown, match.index));
    if (code !== undefined) parts.push(el("code", {}, code));
    else if ((strong ?? strongUnder) !== undefined) parts.push(el("strong", {}, ...inlineMarkup(strong ?? strongUnder!)));
    else parts.push(el("em", {}, ...inlineMarkup(em ?? emUnder!)));
    shown = match.index + whole.length;
  }
  if (shown < text.length) parts.push(text.slice(shown));
  return parts;
}

/** The same line as plain text, marks removed: for titles and tooltips. */
export function plainText(text: string): string {
  return text.replace(INLINE, (_whole, code, strong, strongUnder, em, emUnder) => code ?? strong ?? strongUnder ?? em ?? emUnder);
}
