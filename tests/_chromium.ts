/**
 * Opens a local HTML file in headless Chromium and reports what a reader's browser would show:
 * console errors, uncaught exceptions, and the value of an expression evaluated in the loaded
 * page. Chromium is driven over the Chrome DevTools protocol (a WebSocket on a loopback port
 * that Chromium picks itself), with a fresh profile folder that is removed afterwards.
 *
 * Tests call {@linkcode findChromium} first and skip, with one line saying so, where there is
 * none (`.ci/run` installs Debian's `chromium`).
 */
import { pathToFileURL } from "node:url";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** The Chromium executable, or undefined when none is installed. */
export function findChromium(): string | undefined {
  const fromEnv = Deno.env.get("CHROMIUM");
  for (const path of fromEnv ? [fromEnv, ...CANDIDATES] : CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not there: try the next one
    }
  }
  return undefined;
}

/** What {@linkcode openPage} saw. */
export interface PageReport<T> {
  /** Console messages of level error (console.error, failed loads, CSP, …). */
  consoleErrors: string[];
  /** Uncaught exceptions of the page. */
  exceptions: string[];
  /** The value of the expression, evaluated after the load event. */
  value: T;
}

/** Reads Chromium's stderr until it prints the browser's DevTools WebSocket address. */
async function devtoolsUrl(stderr: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
    const m = text.match(/DevTools listening on (ws:\/\/\S+)/);
    if (m) {
      // Keep draining stderr so that Chromium never blocks on a full pipe.
      (async () => {
        while (!(await reader.read()).done) { /* discard */ }
      })().catch(() => {});
      return m[1];
    }
  }
  throw new Error(`Chromium printed no DevTools address:\n${text.slice(-2000)}`);
}

/** A minimal DevTools protocol client: numbered calls, and a handler for events. */
class Cdp {
  #next = 1;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  onEvent: (method: string, params: Record<string, unknown>) => void = () => {};
  constructor(readonly socket: WebSocket) {
    socket.onmessage = (e) => {
      const msg = JSON.parse(e.data as string);
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`${msg.error.message} (${msg.error.code})`));
        else p?.resolve(msg.result);
      } else {
        this.onEvent(msg.method, msg.params ?? {});
      }
    };
  }
  send<T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<T> {
    const id = this.#next++;
    this.socket.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    return new Promise((resolve, reject) =>
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
    );
  }
}

function describe(args: { value?: unknown; description?: string }[]): string {
  return args.map((a) => a.value !== undefined ? String(a.value) : a.description ?? "").join(" ");
}

/**
 * Loads `file` in headless Chromium, waits for the load event, and evaluates `expression` (it
 * may return a promise) in the page.
 *
 * @param chromium The executable from {@linkcode findChromium}.
 */
export async function openPage<T>(
  chromium: string,
  file: string,
  expression: string,
): Promise<PageReport<T>> {
  const profile = await Deno.makeTempDir({ prefix: "ld3_chromium_" });
  const child = new Deno.Command(chromium, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--remote-debugging-address=127.0.0.1",
      "--remote-debugging-port=0",
      `--user-data-dir=${profile}`,
      "--window-size=1300,1000",
      "about:blank",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let socket: WebSocket | undefined;
  try {
    socket = new WebSocket(await devtoolsUrl(child.stderr));
    await new Promise((resolve, reject) => {
      socket!.onopen = resolve;
      socket!.onerror = () => reject(new Error("Cannot connect to Chromium's DevTools socket"));
    });
    return await inspect<T>(new Cdp(socket), file, expression);
  } finally {
    socket?.close();
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** The page session: console and exceptions collected, the file loaded, the expression run. */
async function inspect<T>(cdp: Cdp, file: string, expression: string): Promise<PageReport<T>> {
  const consoleErrors: string[] = [];
  const exceptions: string[] = [];
  let loaded!: () => void;
  const load = new Promise<void>((resolve) => loaded = resolve);
  cdp.onEvent = (method, params) => {
    if (
      method === "Runtime.consoleAPICalled" && (params.type === "error" || params.type === "assert")
    ) {
      consoleErrors.push(describe(params.args as { value?: unknown }[]));
    } else if (method === "Log.entryAdded") {
      const entry = params.entry as { level: string; text: string; url?: string };
      if (entry.level === "error") consoleErrors.push(`${entry.text} ${entry.url ?? ""}`.trim());
    } else if (method === "Runtime.exceptionThrown") {
      const details = params.exceptionDetails as {
        text: string;
        exception?: { description?: string };
      };
      exceptions.push(details.exception?.description ?? details.text);
    } else if (method === "Page.loadEventFired") {
      loaded();
    }
  };
  const { targetId } = await cdp.send<{ targetId: string }>("Target.createTarget", {
    url: "about:blank",
  });
  const { sessionId } = await cdp.send<{ sessionId: string }>("Target.attachToTarget", {
    targetId,
    flatten: true,
  });
  for (const domain of ["Runtime", "Log", "Page"]) {
    await cdp.send(`${domain}.enable`, {}, sessionId);
  }
  await cdp.send("Page.navigate", { url: pathToFileURL(file).href }, sessionId);
  await Promise.race([
    load,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${file} did not load`)), 30_000)),
  ]);
  const result = await cdp.send<{ result: { value: T }; exceptionDetails?: { text: string } }>(
    "Runtime.evaluate",
    { expression, awaitPromise: true, returnByValue: true },
    sessionId,
  );
  if (result.exceptionDetails) {
    throw new Error(`Evaluation failed: ${result.exceptionDetails.text}`);
  }
  return { consoleErrors, exceptions, value: result.result.value };
}

/**
 * The expression the report tests evaluate: counts of inline charts and pictures that the
 * browser actually drew (non-empty boxes, decoded images), tables, and the headings.
 */
export const PAGE_FACTS = `(async () => {
  const images = [...document.images];
  await Promise.all(images.map((img) => img.decode().catch(() => {})));
  const charts = [...document.querySelectorAll("svg.chart")];
  return {
    title: document.title,
    headings: [...document.querySelectorAll("h2")].map((h) => h.textContent),
    charts: charts.length,
    drawnCharts: charts.filter((svg) => {
      const box = svg.getBoundingClientRect();
      return box.width > 100 && box.height > 100 && svg.querySelectorAll("path, line").length > 5;
    }).length,
    chartTexts: charts.map((svg) => svg.querySelectorAll("text").length),
    images: images.length,
    decodedImages: images.filter((img) => img.complete && img.naturalWidth > 0).length,
    imageTypes: images.map((img) => img.src.slice(0, 15)),
    tables: document.querySelectorAll("table").length,
  };
})()`;

/** The shape of {@linkcode PAGE_FACTS}' value. */
export interface PageFacts {
  title: string;
  headings: string[];
  charts: number;
  drawnCharts: number;
  chartTexts: number[];
  images: number;
  decodedImages: number;
  imageTypes: string[];
  tables: number;
}
