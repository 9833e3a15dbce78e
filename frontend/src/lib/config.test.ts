import { describe, expect, it } from 'vitest';
import { counterFromPath, loadConfig, resolveConfig } from './config';

const page = new URL('http://127.0.0.1:8080/c/clicks');

describe('configuration', () => {
  it('defaults to the page origin', () => {
    expect(resolveConfig({}, page)).toEqual({ apiUrl: 'http://127.0.0.1:8080', wsUrl: 'ws://127.0.0.1:8080/ws' });
  });

  it('takes absolute and relative URLs', () => {
    const config = resolveConfig(
      { apiUrl: 'https://api.example/', wsUrl: 'wss://abc.execute-api.eu-west-1.amazonaws.com/prod' },
      page,
    );
    expect(config).toEqual({ apiUrl: 'https://api.example', wsUrl: 'wss://abc.execute-api.eu-west-1.amazonaws.com/prod' });
    expect(resolveConfig({ wsUrl: '/socket' }, new URL('https://site.example/')).wsUrl).toBe('wss://site.example/socket');
  });

  it('falls back when /config.json is missing', async () => {
    const missing = () => Promise.resolve(new Response('nope', { status: 404 }));
    expect(await loadConfig(page, missing)).toEqual(resolveConfig({}, page));
    const down = () => Promise.reject(new TypeError('offline'));
    expect(await loadConfig(page, down)).toEqual(resolveConfig({}, page));
  });

  it('reads the counter from the path', () => {
    expect(counterFromPath('/')).toBe('global');
    expect(counterFromPath('/c/clicks')).toBe('clicks');
    expect(counterFromPath('/c/clicks/')).toBe('clicks');
    expect(counterFromPath('/elsewhere')).toBe('global');
  });
});
