// Userspace proxy process for the throughput bench: listens on LISTEN_HOST:LISTEN_PORT and forwards
// to BACKEND_HOST:BACKEND_PORT through @shoal/netdp's UserspaceDataplane. Prints "ready".
// Usage: node proxy.mjs LISTEN_HOST LISTEN_PORT BACKEND_HOST BACKEND_PORT
import { UserspaceDataplane } from '@shoal/netdp';
const [host, port, bHost, bPort] = process.argv.slice(2);
const dp = new UserspaceDataplane();
await dp.sync({ services: [{ id: 'bench', name: 'bench', vip: host, ports: [{ protocol: 'tcp', targetPort: Number(port) }], backends: [{ ip: bHost, port: Number(bPort), taskId: 'b', state: 'active' }] }] });
console.log('ready');
