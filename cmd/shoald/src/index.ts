export { main } from './main.js';
export { dockerPlatform } from './platform.js';
