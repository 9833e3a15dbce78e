import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { CounterPage, browserEnv } from './lib/counterPage';
import './index.css';

const root = document.getElementById('root');
if (root !== null) {
  createRoot(root).render(
    <StrictMode>
      <App page={new CounterPage(browserEnv())} />
    </StrictMode>,
  );
}
