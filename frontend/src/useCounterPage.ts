import { useEffect, useSyncExternalStore } from 'react';
import type { CounterPage, PageState } from './lib/counterPage';

/** The page's state, kept by `page` — started while a component shows it, stopped when none does. */
export function useCounterPage(page: CounterPage): PageState {
  useEffect(() => {
    page.start();
    return () => {
      page.stop();
    };
  }, [page]);
  return useSyncExternalStore(page.subscribe, page.getSnapshot);
}
