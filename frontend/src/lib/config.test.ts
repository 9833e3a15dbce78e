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

  it('falls back when the site has no /config.json, and fails when it cannot be read', async () => {
    const missing = () => Promise.resolve(new Response('nope', { status: 404 }));
    expect(await loadConfig(page, missing)).toEqual(resolveConfig({}, page));
    const down = () => Promise.reject(new TypeError('offline'));
    await expect(loadConfig(page, down)).rejects.toThrow('offline');
    const failing = () => Promise.resolve(new Response('oops', { status: 503 }));
    await expect(loadConfig(page, failing)).rejects.toThrow('503');
  });

  it('reads the counter from the path', () => {
    expect(counterFromPath('/')).toEqual({ valid: true, name: 'global' });
    expect(counterFromPath('/c/clicks')).toEqual({ valid: true, name: 'clicks' });
    expect(counterFromPath('/c/clicks/')).toEqual({ valid: true, name: 'clicks' });
    expect(counterFromPath('/c/a%2Db')).toEqual({ valid: true, name: 'a-b' });
    expect(counterFromPath('/elsewhere')).toEqual({ valid: true, name: 'global' });
  });

  it('says why an address names no counter, without throwing', () => {
    expect(counterFromPath('/c/%E0')).toMatchObject({ valid: false, shown: '%E0' });
    expect(counterFromPath('/c/Apples')).toMatchObject({ valid: false, shown: 'Apples' });
    expect(counterFromPath(`/c/${'a'.repeat(65)}`)).toMatchObject({ valid: false });
    expect(counterFromPath('/c/-x')).toMatchObject({ valid: false });
    expect(counterFromPath('/c/')).toMatchObject({ valid: false });
    expect(counterFromPath('/c/a/b')).toMatchObject({ valid: false });
  });
});
