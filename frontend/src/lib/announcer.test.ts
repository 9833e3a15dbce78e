import { describe, expect, it, vi } from 'vitest';
import { ANNOUNCE_EVERY_MS, Announcer } from './announcer';
import { withFakeTimers } from '../test/fakeTimers';

function harness() {
  const heard: string[] = [];
  const announcer = new Announcer((announcement) => heard.push(announcement));
  return { announcer, heard };
}

withFakeTimers();

describe('Announcer', () => {
  it('announces at once, then at most once per bound: the latest of a burst', () => {
    const { announcer, heard } = harness();
    announcer.say('counter clicks is 0');
    expect(heard).toEqual(['counter clicks is 0']);
    for (let i = 1; i <= 20; i += 1) {
      announcer.say(`counter clicks is ${i}`);
      vi.advanceTimersByTime(100);
    }
    expect(heard).toEqual(['counter clicks is 0']);
    vi.advanceTimersByTime(ANNOUNCE_EVERY_MS - 2_000 - 1);
    expect(heard).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(heard).toEqual(['counter clicks is 0', 'counter clicks is 20']);
  });

  it('announces at once again once the bound has passed', () => {
    const { announcer, heard } = harness();
    announcer.say('counter clicks is 1');
    vi.advanceTimersByTime(ANNOUNCE_EVERY_MS);
    announcer.say('counter clicks is 2');
    expect(heard).toEqual(['counter clicks is 1', 'counter clicks is 2']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('drops what waits to be announced when stopped, and keeps to the bound after', () => {
    const { announcer, heard } = harness();
    announcer.say('counter clicks is 1');
    announcer.say('counter clicks is 2');
    announcer.stop();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(ANNOUNCE_EVERY_MS - 1);
    announcer.say('counter clicks is 3');
    expect(heard).toEqual(['counter clicks is 1']);
    vi.advanceTimersByTime(1);
    expect(heard).toEqual(['counter clicks is 1', 'counter clicks is 3']);
  });
});
