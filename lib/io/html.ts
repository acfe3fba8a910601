/**
 * Self-contained HTML reports: one file that opens in any browser with nothing beside it.
 * Charts are inline SVG (`plot.ts`), pictures and animations `data:` URLs, tables plain HTML;
 * the page has its own small stylesheet and no script.
 *
 * @example
 * ```ts
 * import { htmlPage, htmlTable } from "./html.ts";
 * const page = htmlPage("Run", [
 *   { title: "Losses", body: htmlTable(["grid", "loss"], [["LD3", 0.0123], ["EDM", 0.05]]) },
 * ]);
 * if (!page.startsWith("<!doctype html>")) throw new Error("not a page");
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { escapeXml, FONT_STACK } from "./svg.ts";

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return escapeXml(text);
}

/** Bytes as a `data:` URL of the given MIME type (`image/png`, `image/gif`, …). */
export function dataUrl(bytes: Uint8Array, mime: string): string {
  return `data:${mime};base64,${Buffer.from(bytes).toString("base64")}`;
}

/** A table cell: text, a number (4 significant digits) or text shown in bold. */
export type HtmlCell = string | number | { bold: string | number };

/** A number for a table: integers as they are, others with 4 significant digits. */
export function formatCell(value: number): string {
  if (Number.isInteger(value) || !Number.isFinite(value)) return String(value);
  return String(Number(value.toPrecision(4)));
}

function cellHtml(cell: HtmlCell): string {
  if (typeof cell === "object") return `<strong>${cellHtml(cell.bold)}</strong>`;
  return escapeHtml(typeof cell === "number" ? formatCell(cell) : cell);
}

/** Options of {@linkcode htmlTable}. */
export interface HtmlTableOptions {
  /** Right-align the columns from this index on (numbers). @default {1} */
  numericFrom?: number;
  /** A caption under the table. @default {none} */
  caption?: string;
}

/**
 * An HTML table (all text escaped).
 *
 * @throws {RangeError} When a row has another length than the header.
 */
export function htmlTable(
  headers: readonly string[],
  rows: readonly (readonly HtmlCell[])[],
  options: HtmlTableOptions = {},
): string {
  rows.forEach((row, i) => {
    if (row.length !== headers.length) {
      throw new RangeError(
        `Table row ${i} has ${row.length} cells, the header has ${headers.length}`,
      );
    }
  });
  const from = options.numericFrom ?? 1;
  const cls = (k: number) => k >= from ? ` class="num"` : "";
  const head = headers.map((h, k) => `<th${cls(k)}>${escapeHtml(h)}</th>`).join("");
  const body = rows.map((row) =>
    `<tr>${row.map((c, k) => `<td${cls(k)}>${cellHtml(c)}</td>`).join("")}</tr>`
  ).join("\n");
  const caption = options.caption ? `<caption>${escapeHtml(options.caption)}</caption>` : "";
  return `<table>${caption}<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
}

/** A figure: inline SVG markup (a chart) with a caption under it. */
export function svgFigure(svg: string, caption: string): string {
  const markup = svg.replace(/^<svg\b/, `<svg class="chart" role="img"`);
  return `<figure>${markup}<figcaption>${escapeHtml(caption)}</figcaption></figure>`;
}

/** A figure: a picture (PNG, GIF) as a `data:` URL with a caption under it. */
export function imageFigure(bytes: Uint8Array, mime: string, caption: string): string {
  return `<figure><img class="picture" src="${dataUrl(bytes, mime)}" alt="${
    escapeHtml(caption)
  }"><figcaption>${escapeHtml(caption)}</figcaption></figure>`;
}

/** A paragraph of text (escaped). */
export function paragraph(text: string): string {
  return `<p>${escapeHtml(text)}</p>`;
}

/**
 * Option values as a two-column table: nested objects become `a.b` rows, lists are joined
 * with commas (long number lists rounded to 4 significant digits).
 */
export function optionsTable(options: Record<string, unknown>): string {
  const rows: [string, string][] = [];
  const walk = (prefix: string, value: unknown) => {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(prefix ? `${prefix}.${k}` : k, v);
    } else if (Array.isArray(value)) {
      rows.push([
        prefix,
        value.map((v) => typeof v === "number" ? formatCell(v) : String(v))
          .join(", "),
      ]);
    } else {
      rows.push([prefix, value === null || value === undefined ? "—" : String(value)]);
    }
  };
  walk("", options);
  return htmlTable(["option", "value"], rows, { numericFrom: 2 });
}

/** One section of a {@linkcode htmlPage}: a heading and its HTML. */
export interface HtmlSection {
  /** Section heading (plain text, escaped). */
  title: string;
  /** HTML markup (build it with the helpers of this module, which escape text). */
  body: string;
}

/** Options of {@linkcode htmlPage}. */
export interface HtmlPageOptions {
  /** A line under the title. @default {none} */
  subtitle?: string;
}

const STYLE = `
body { font-family: ${FONT_STACK}; color: #1a1a1a; background: #fafafa; margin: 0; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 32px 48px; background: white; }
h1 { font-size: 26px; font-weight: 600; margin: 0 0 4px; }
h2 { font-size: 20px; font-weight: 600; margin: 36px 0 12px; border-bottom: 1px solid #ddd;
  padding-bottom: 4px; }
p.subtitle { color: #555; margin: 0 0 16px; }
nav { font-size: 14px; margin: 8px 0 0; }
nav a { margin-right: 14px; color: #0b5cad; text-decoration: none; }
figure { margin: 12px 0 20px; }
figcaption { font-size: 14px; color: #444; margin-top: 6px; max-width: 860px; }
svg.chart { max-width: 100%; height: auto; display: block; }
img.picture { max-width: 100%; image-rendering: pixelated; display: block; }
table { border-collapse: collapse; font-size: 14px; margin: 8px 0 16px; }
caption { caption-side: bottom; text-align: left; font-size: 13px; color: #555; padding-top: 6px; }
th, td { padding: 4px 12px; border-bottom: 1px solid #e4e4e4; text-align: left; }
th { border-bottom: 2px solid #999; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #f6f8fa; }
`;

/** A section id from its title. */
function slug(title: string, k: number): string {
  const base = title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  return `s${k}-${base}`;
}

/** A complete HTML document: title, table of contents and sections, with its stylesheet. */
export function htmlPage(
  title: string,
  sections: readonly HtmlSection[],
  options: HtmlPageOptions = {},
): string {
  const nav = sections.map((s, k) => `<a href="#${slug(s.title, k)}">${escapeHtml(s.title)}</a>`)
    .join("");
  const body = sections.map((s, k) =>
    `<section id="${slug(s.title, k)}">\n<h2>${escapeHtml(s.title)}</h2>\n${s.body}\n</section>`
  ).join("\n");
  return [
    "<!doctype html>",
    `<html lang="en"><head><meta charset="utf-8">`,
    `<meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<title>${escapeHtml(title)}</title>`,
    `<style>${STYLE}</style></head>`,
    "<body><main>",
    `<h1>${escapeHtml(title)}</h1>`,
    options.subtitle ? `<p class="subtitle">${escapeHtml(options.subtitle)}</p>` : "",
    `<nav>${nav}</nav>`,
    body,
    "</main></body></html>",
    "",
  ].join("\n");
}
