export { Daemon, type DaemonOptions } from './daemon.js';
export { main } from './main.js';
