import { fetchAnswer } from './fetchAnswer';

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

/** How long the configuration may take to arrive. */
const CONFIG_TIMEOUT_MS = 10_000;

/**
 * Reads `/config.json`: the defaults when the site has none (404); a failure (network, timeout, 5xx) is thrown,
 * for the caller to try again — on AWS the API is elsewhere, and the page's own origin would not do.
 */
export async function loadConfig(page: URL, fetchImpl: typeof fetch = fetch, signal?: AbortSignal): Promise<Config> {
  const url = new URL('/config.json', page);
  const answer = await fetchAnswer(fetchImpl, url, { cache: 'no-store' }, CONFIG_TIMEOUT_MS, signal);
  if (answer.status === 404) return resolveConfig({}, page);
  if (!answer.ok) throw new Error(`the server answered ${answer.status}`);
  let raw: RawConfig;
  try {
    raw = JSON.parse(answer.body) as RawConfig;
  } catch {
    throw new Error('they are not valid JSON');
  }
  return resolveConfig(raw, page);
}

/** The counter a page shows, or why its address names none. */
export type PageCounter = { valid: true; name: string } | { valid: false; shown: string; reason: string };

/** A counter's name, as the contract has it. */
const COUNTER_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** The counter a page shows: `global` at `/`, NAME at `/c/NAME` — when NAME is a counter's name. */
export function counterFromPath(pathname: string): PageCounter {
  if (!pathname.startsWith('/c/') && pathname !== '/c') return { valid: true, name: 'global' };
  const match = /^\/c\/([^/]+)\/?$/.exec(pathname);
  const raw = match?.[1];
  if (raw === undefined) {
    return { valid: false, shown: pathname, reason: 'The address is not valid: it names no counter.' };
  }
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    return { valid: false, shown: raw, reason: 'The address is not valid: it names no counter.' };
  }
  if (COUNTER_NAME.test(name)) return { valid: true, name };
  return {
    valid: false,
    shown: name,
    reason:
      'A counter’s name is 1 to 64 characters: lowercase letters, digits, “-” and “_”, starting with a letter or a digit.',
  };
}
