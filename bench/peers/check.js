// A second, independent load generator for the fan-out scenario, to check the suite's figures
// for the Node peers with another tool: Node.js and the `ws` client instead of Rust and
// tokio-tungstenite, one process, its own timing and counting.
//
// It opens MEMBERS WebSockets to one room, makes the first SENDERS of them send RATE messages a
// second each for SECS seconds, waits 1.5 s for late deliveries, and prints the delivered rate,
// the share delivered and the latency percentiles, plus the server's CPU per delivery when given
// its pid. A rate is sustained, as in the suite, when p99 <= 100 ms and >= 95% is delivered.
//
//   node check.js ws|socketio PORT RATE [MEMBERS=1000] [SENDERS=10] [SECS=5] [SERVER_PID]
//
// For example, with the relay pinned to core 0 and this to core 1:
//   taskset -c 0 node bench/peers/ws-relay.js 9001 & sleep 1
//   taskset -c 1 node bench/peers/check.js ws 9001 8 1000 10 5 $!; kill $!
const fs = require('fs');
const WebSocket = require('ws');

const [kind, port, rate, members = 1000, senders = 10, secs = 5, serverPid] = process.argv.slice(2);
if (!['ws', 'socketio'].includes(kind) || !port || !rate) {
  console.error('usage: node check.js ws|socketio PORT RATE [MEMBERS] [SENDERS] [SECS] [SERVER_PID]');
  process.exit(2);
}
const url = kind === 'ws'
  ? `ws://127.0.0.1:${port}/`
  : `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`;

const cpuSecs = (pid) => {
  if (!pid) return 0;
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};

const encode = (obj, event) => kind === 'ws'
  ? JSON.stringify(obj)
  : '42' + JSON.stringify([event, obj.type === 'join' ? obj.room : obj]);

let sent = 0;
let received = 0;
const latencies = [];
let measuring = false;

function open(i) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, localAddress: `127.0.9.${1 + (i % 200)}` });
    ws.on('error', reject);
    ws.on('message', (data) => {
      const text = data.toString();
      if (kind === 'socketio') {
        if (text === '2') { ws.send('3'); return; }
        if (text.startsWith('0')) { ws.send('40'); return; }
        if (text.startsWith('40')) { ws.send(encode({ type: 'join', room: 'b0' }, 'join')); return; }
      }
      if (text.includes('joined')) { resolve(ws); return; }
      const at = text.indexOf('~');
      if (at < 0 || !measuring) return;
      const [sender, , sentAt] = text.slice(at + 1).split('~');
      if (Number(sender) === i) return;
      received += 1;
      latencies.push(Date.now() - Number(sentAt));
    });
    ws.on('open', () => {
      if (kind === 'ws') ws.send(encode({ type: 'join', room: 'b0' }));
    });
  });
}

(async () => {
  const socks = [];
  for (let i = 0; i < Number(members); i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(i + 50, Number(members)); j++) batch.push(open(j));
    socks.push(...(await Promise.all(batch)));
  }
  await new Promise((r) => setTimeout(r, 500));
  const cpu0 = cpuSecs(serverPid);
  measuring = true;
  const end = Date.now() + Number(secs) * 1000;
  const period = 1000 / Number(rate);
  for (let s = 0; s < Number(senders); s++) {
    let n = 0;
    const tick = () => {
      if (Date.now() >= end) return;
      n += 1;
      const text = `~${s}~${n}~${Date.now()}~ the quick brown fox jumps over the lazy dog, again and again.`;
      socks[s].send(encode({ type: 'send', room: 'b0', text }, 'send'));
      sent += 1;
      setTimeout(tick, period);
    };
    setTimeout(tick, (s * period) / Number(senders));
  }
  await new Promise((r) => setTimeout(r, Number(secs) * 1000 + 1500));
  measuring = false;
  const cpu = cpuSecs(serverPid) - cpu0;
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  const expected = sent * (Number(members) - 1);
  const share = received / Math.max(1, expected);
  const p99 = q(0.99);
  console.log(JSON.stringify({
    kind, rate: Number(rate), sent, expected, received,
    delivered_per_s: Math.round(received / Number(secs)),
    delivered_share: Number(share.toFixed(4)),
    p50_ms: q(0.5), p99_ms: p99,
    server_cpu_us_per_delivery: serverPid ? Number((cpu * 1e6 / Math.max(1, received)).toFixed(2)) : null,
    sustained: p99 <= 100 && share >= 0.95,
  }));
  for (const ws of socks) ws.terminate();
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
