// The dashboard's client: one WebSocket to /ws on this page's own origin, speaking the
// Ignis protocol (authenticate → connected, heartbeats, events). The socket
// authenticates by the session cookie its upgrade request carries, so `authenticate`
// sends no token; without a session the server closes it with 4003 and the login form
// shows. Samples are drawn on a canvas as they arrive.
'use strict';

const HEARTBEAT_MS = 20000;
const KEEP = 120; // samples on the chart

const state = {
  user: null,
  clientId: null,
  samples: [],
  announcements: [],
  frames: 0,      // chart redraws
  closeCode: null,
  connects: 0,
};
window.dashboard = state;

const $ = (id) => document.getElementById(id);

function connect() {
  state.connects += 1;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  let heartbeat = null;
  ws.onopen = () => ws.send(JSON.stringify({ event: 'authenticate', data: {} }));
  ws.onmessage = (message) => {
    const { event, data } = JSON.parse(message.data);
    if (event === 'connected') {
      state.user = data.userId;
      state.clientId = data.id;
      heartbeat = setInterval(() => ws.send(JSON.stringify({ event: 'heartbeat' })), HEARTBEAT_MS);
      showLive();
    } else if (event === 'sample') {
      onSample(data);
    } else if (event === 'announcement') {
      onAnnouncement(data);
    }
  };
  ws.onclose = (close) => {
    clearInterval(heartbeat);
    state.closeCode = close.code;
    if (close.code === 4003) {
      showLogin();
    } else {
      setStatus(`disconnected (${close.code}); reconnecting…`, false);
      setTimeout(connect, 1000);
    }
  };
}

function setStatus(text, live) {
  $('status').textContent = text;
  $('status').classList.toggle('live', live);
}

function showLogin() {
  setStatus('Log in to see the live data.', false);
  $('login').hidden = false;
  $('live').hidden = true;
}

function showLive() {
  setStatus(`live as ${state.user}`, true);
  $('login').hidden = true;
  $('live').hidden = false;
}

function onSample(sample) {
  state.samples.push(sample);
  if (state.samples.length > KEEP) state.samples.shift();
  $('latest').textContent = sample.value.toFixed(2);
  $('clients').textContent = String(sample.clients);
  draw();
}

function onAnnouncement(announcement) {
  state.announcements.push(announcement);
  const item = document.createElement('li');
  item.textContent = `${announcement.from}: ${announcement.text}`;
  $('announcements').prepend(item);
}

function draw() {
  const canvas = $('chart');
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  ctx.strokeStyle = '#e3e7ee';
  ctx.lineWidth = 1;
  for (let y = 0; y <= 100; y += 25) {
    const py = height - (y / 100) * height;
    ctx.beginPath();
    ctx.moveTo(0, py);
    ctx.lineTo(width, py);
    ctx.stroke();
  }
  if (state.samples.length < 2) return;
  ctx.strokeStyle = '#2458c6';
  ctx.lineWidth = 2;
  ctx.beginPath();
  state.samples.forEach((sample, i) => {
    const x = (i / (KEEP - 1)) * width;
    const y = height - (Math.max(0, Math.min(100, sample.value)) / 100) * height;
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  state.frames += 1;
}

async function post(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return response.ok;
}

$('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (await post('/login', { user: $('user').value })) {
    setStatus('connecting…', false);
    connect();
  } else {
    setStatus('That name cannot be used.', false);
  }
});

$('announce').addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = $('announce-text').value;
  if (await post('/announce', { text })) $('announce-text').value = '';
});

connect();
