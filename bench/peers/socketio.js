// A Socket.IO 4.8 chat server in the shape of its chat example: rooms, and `io.to(room).emit`.
//   emit("join", room)          -> socket.join(room); emit("joined", room)
//   emit("send", {room, text})  -> io.to(room).emit("message", {room, author, text, ts})
// Usage: node socketio.js PORT
// With REDIS_URL set (redis://host:port), the nodes share rooms through @socket.io/redis-adapter,
// Socket.IO's own way to run several servers behind a load balancer.
const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.argv[2] || 9002);
const io = new Server({ transports: ['websocket'], maxHttpBufferSize: 64 * 1024, serveClient: false });
let nextId = 0;

io.on('connection', (socket) => {
  const name = `u${nextId++}`;
  socket.on('join', (room) => {
    socket.join(room);
    socket.emit('joined', room);
  });
  socket.on('send', (msg) => {
    if (!msg || !socket.rooms.has(msg.room)) return;
    io.to(msg.room).emit('message', { room: msg.room, author: name, text: msg.text, ts: Date.now() });
  });
});
async function main() {
  if (process.env.REDIS_URL) {
    const { createAdapter } = require('@socket.io/redis-adapter');
    const { createClient } = require('redis');
    const pub = createClient({ url: process.env.REDIS_URL });
    const sub = pub.duplicate();
    // The benchmark stops Redis with the nodes: a lost connection is not news.
    pub.on('error', () => {});
    sub.on('error', () => {});
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  const server = http.createServer();
  io.attach(server);
  server.listen(port, '127.0.0.1', () => console.log(`socket.io on ${port}`));
}
main().catch((e) => { console.error(e); process.exit(1); });
