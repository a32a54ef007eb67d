import { createServer } from 'node:http';

// The ceiling for a one-process Node HTTP server on this machine: read the request, answer a small
// fixed JSON body the size of a SendMessage result. Prints {"url", "pid"} once listening.
const BODY = JSON.stringify({ MD5OfMessageBody: '5d41402abc4b2a76b9719d911017c592', MessageId: '0f1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8' });
const HEADERS = { 'content-type': 'application/x-amz-json-1.0', 'content-length': Buffer.byteLength(BODY) };

const server = createServer((request, response) => {
  request.resume();
  request.on('end', () => {
    response.writeHead(200, HEADERS);
    response.end(BODY);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  console.log(JSON.stringify({ url: `http://127.0.0.1:${address.port}`, pid: process.pid }));
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
