// HTTP backend for the throughput bench: answers every request with a 64-byte body.
// Usage: node backend.mjs HOST PORT   (prints "ready" when listening)
import http from 'node:http';
const body = Buffer.alloc(64, 'x');
http.createServer({ keepAliveTimeout: 60000 }, (req, res) => {
  res.writeHead(200, { 'content-length': body.length, 'content-type': 'text/plain' });
  res.end(body);
}).listen(Number(process.argv[3]), process.argv[2], () => console.log('ready'));
