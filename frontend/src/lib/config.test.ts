import { describe, expect, it } from 'vitest';
import { counterFromPath, loadConfig, resolveConfig } from './config';

const page = new URL('http://127.0.0.1:8080/c/clicks');

describe('configuration', () => {
  it('defaults to the page origin', () => {
    expect(resolveConfig({}, page)).toEqual({
      apiUrl: 'http://127.0.0.1:8080',
      wsUrl: 'ws://127.0.0.1:8080/ws',
      counterMax: 1_000_000_000,
    });
  });

  it('takes absolute and relative URLs', () => {
    const config = resolveConfig(
      { apiUrl: 'https://api.example/', wsUrl: 'wss://abc.execute-api.eu-west-1.amazonaws.com/prod' },
      page,
    );
    expect(config).toEqual({
      apiUrl: 'https://api.example',
      wsUrl: 'wss://abc.execute-api.eu-west-1.amazonaws.com/prod',
      counterMax: 1_000_000_000,
    });
    expect(resolveConfig({ wsUrl: '/socket' }, new URL('https://site.example/')).wsUrl).toBe('wss://site.example/socket');
  });

  it('takes the ceiling when it is a whole number from 1', () => {
    expect(resolveConfig({ counterMax: 3 }, page).counterMax).toBe(3);
    for (const bad of [0, -1, 2.5, '7', null, 2 ** 60]) {
      expect(resolveConfig({ counterMax: bad }, page).counterMax).toBe(1_000_000_000);
    }
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
