/**
 * Run-time configuration from `/config.json`: `{"apiUrl": "…", "wsUrl": "…", "counterMax": N}`, all optional (same
 * origin; the default ceiling).
 */

/** The counters' ceiling unless the configuration names another. */
export const DEFAULT_COUNTER_MAX = 1_000_000_000;

export interface Config {
  /** Base URL of the HTTP API, without a trailing slash. */
  apiUrl: string;
  /** URL of the WebSocket endpoint (ws: or wss:). */
  wsUrl: string;
  /** The value no counter goes above. */
  counterMax: number;
}

interface RawConfig {
  apiUrl?: unknown;
  wsUrl?: unknown;
  counterMax?: unknown;
}

/** Resolves the configuration against the page's own address. */
export function resolveConfig(raw: RawConfig, page: URL): Config {
  const apiUrl = typeof raw.apiUrl === 'string' && raw.apiUrl !== '' ? raw.apiUrl : page.origin;
  const wsRaw = typeof raw.wsUrl === 'string' && raw.wsUrl !== '' ? raw.wsUrl : '/ws';
  const ws = new URL(wsRaw, page);
  if (ws.protocol === 'http:') ws.protocol = 'ws:';
  if (ws.protocol === 'https:') ws.protocol = 'wss:';
  const max = raw.counterMax;
  const counterMax = typeof max === 'number' && Number.isSafeInteger(max) && max >= 1 ? max : DEFAULT_COUNTER_MAX;
  return { apiUrl: new URL(apiUrl, page).toString().replace(/\/$/, ''), wsUrl: ws.toString(), counterMax };
}

export async function loadConfig(page: URL, fetchImpl: typeof fetch = fetch): Promise<Config> {
  try {
    const response = await fetchImpl(new URL('/config.json', page), { cache: 'no-store' });
    if (!response.ok) return resolveConfig({}, page);
    return resolveConfig((await response.json()) as RawConfig, page);
  } catch {
    return resolveConfig({}, page);
  }
}

/** The counter a page shows: `global` at `/`, NAME at `/c/NAME`. */
export function counterFromPath(pathname: string): string {
  const match = /^\/c\/([^/]+)\/?$/.exec(pathname);
  return match?.[1] !== undefined ? decodeURIComponent(match[1]) : 'global';
}
