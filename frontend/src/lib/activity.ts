/** Changes seen over time, for a line of changes per minute: each entry is when, and how many changes. */
export type Activity = readonly { at: number; changes: number }[];

/** How many minutes the line covers. */
export const ACTIVITY_MINUTES = 15;
const MINUTE = 60_000;

/** Adds `changes` seen at `now`, forgetting what is older than the line covers. */
export function recordChanges(activity: Activity, changes: number, now: number): Activity {
  const kept = activity.filter((entry) => entry.at > now - ACTIVITY_MINUTES * MINUTE);
  return changes > 0 ? [...kept, { at: now, changes }] : kept;
}

/** Changes per minute for each of the last minutes, oldest first; the last entry is the minute ending now. */
export function changesPerMinute(activity: Activity, now: number): number[] {
  const minutes = new Array<number>(ACTIVITY_MINUTES).fill(0);
  for (const { at, changes } of activity) {
    const ago = Math.floor((now - at) / MINUTE);
    if (ago >= 0 && ago < ACTIVITY_MINUTES) minutes[ACTIVITY_MINUTES - 1 - ago] = (minutes[ACTIVITY_MINUTES - 1 - ago] ?? 0) + changes;
  }
  return minutes;
}
