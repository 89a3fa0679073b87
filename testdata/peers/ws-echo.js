// WebSocket echo server on top of the npm "ws" package, started by
// internal/peers.StartNodeWS.
//
//   node ws-echo.js [--deflate] [--protocols=chat,superchat] [--max-size=BYTES]
//
// The environment variable WS_ECHO_DEFLATE=1 also enables permessage-deflate.
// It listens on 127.0.0.1 with a port chosen by the kernel and prints
// "LISTENING <port>" on stdout once it accepts connections. It exits when
// its standard input reaches EOF (the Go test process went away) or on
// SIGTERM/SIGINT.
'use strict';

const { WebSocketServer } = require('ws');

const opts = {
  deflate: process.env.WS_ECHO_DEFLATE === '1',
  protocols: ['chat', 'superchat'],
  maxSize: 64 * 1024 * 1024,
};
for (const arg of process.argv.slice(2)) {
  const eq = arg.indexOf('=');
  const name = eq < 0 ? arg : arg.slice(0, eq);
  const value = eq < 0 ? '' : arg.slice(eq + 1);
  switch (name) {
    case '--deflate':
      opts.deflate = true;
      break;
    case '--protocols':
      opts.protocols = value.split(',').filter((p) => p !== '');
      break;
    case '--max-size':
      opts.maxSize = Number.parseInt(value, 10);
      break;
    default:
      console.error(`ws-echo: unknown argument ${arg}`);
      process.exit(2);
  }
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  maxPayload: opts.maxSize,
  // threshold 0: compress every message, so small test messages use it too.
  perMessageDeflate: opts.deflate ? { threshold: 0 } : false,
  // Answer with the first protocol the client offers that we support.
  handleProtocols: (offered) => {
    for (const p of offered) {
      if (opts.protocols.includes(p)) return p;
    }
    return false;
  },
});

wss.on('connection', (ws) => {
  // Text stays text and binary stays binary. Pings are answered by ws, and
  // a received close frame is echoed back with the same code and reason.
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary, compress: opts.deflate });
  });
  ws.on('error', (err) => console.error(`ws-echo: connection error: ${err.message}`));
});

wss.on('error', (err) => {
  console.error(`ws-echo: server error: ${err.message}`);
  process.exit(1);
});

wss.on('listening', () => {
  process.stdout.write(`LISTENING ${wss.address().port}\n`);
});

const stop = () => {
  for (const ws of wss.clients) ws.terminate();
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

// Exit when the parent closes our stdin (or dies).
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
