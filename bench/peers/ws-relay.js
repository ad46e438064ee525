// A Node `ws` chat relay, written as such relays usually are: rooms in a Map of Sets, each
// incoming message parsed, one outgoing JSON string built, and sent to every member.
// Frames follow our protocol's shape so the same load generator drives both:
//   {"type":"join","room":"r"}              -> {"type":"joined","room":"r"}
//   {"type":"send","room":"r","text":"..."} -> {"type":"message","room":"r","author":"u7","text":"...","ts":...}
// Usage: node ws-relay.js PORT
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 9001);
const rooms = new Map();
let nextId = 0;
const wss = new WebSocketServer({ host: '127.0.0.1', port, maxPayload: 64 * 1024 });

wss.on('connection', (ws) => {
  const name = `u${nextId++}`;
  const joined = new Set();
  ws.on('message', (data) => {
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    if (msg.type === 'join') {
      if (!rooms.has(msg.room)) rooms.set(msg.room, new Set());
      rooms.get(msg.room).add(ws);
      joined.add(msg.room);
      ws.send(JSON.stringify({ type: 'joined', room: msg.room }));
    } else if (msg.type === 'send' && joined.has(msg.room)) {
      const out = JSON.stringify({ type: 'message', room: msg.room, author: name, text: msg.text, ts: Date.now() });
      for (const member of rooms.get(msg.room)) {
        if (member.readyState === 1) member.send(out);
      }
    }
  });
  ws.on('close', () => { for (const r of joined) rooms.get(r)?.delete(ws); });
});
wss.on('listening', () => console.log(`ws relay on ${port}`));
