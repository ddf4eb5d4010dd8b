// jetvoice talk page.
//
// Browser mic -> WebRTC (pipecat SmallWebRTC, served by the jetvoice server) -> bot audio back.
// Alongside the media, a data channel carries pipecat's liveness pings (client -> server) and
// RTVI events (server -> client) that drive the transcript and the listening/thinking/speaking
// state. Two WebAudio analysers (mic and bot audio) give a state signal that does not depend on
// RTVI being enabled, and measure the voice-to-voice latency as this page hears it.
//
// Plain ES2020 module, no dependencies, nothing loaded from outside the server.

import { BotLine } from './bot_line.js';

// ---------------------------------------------------------------------------------------------
// Tunables
// ---------------------------------------------------------------------------------------------

// RTVI protocol version we speak. pipecat 1.14 serves protocol 2.2.0; a client that announces
// 2.x gets the current bot-output format (segments with spoken_status), 1.x gets the legacy one.
const RTVI_VERSION = '2.2.0';
const CLIENT_ABOUT = { library: 'jetvoice-web', library_version: '0.1.0' };

const TOKEN_KEY = 'jetvoice.token';

const ICE_GATHER_TIMEOUT_MS = 2000;  // host candidates only: gathering is normally done in ~100 ms
const OFFER_TIMEOUT_MS = 30000;      // the server may build a whole pipeline before it answers
const CONNECT_TIMEOUT_MS = 20000;    // offer answered -> media + data channel up
const DISCONNECTED_GRACE_MS = 6000;  // 'disconnected' often recovers by itself (Wi-Fi hiccup)
const PING_INTERVAL_MS = 1000;       // pipecat treats a peer with no ping for 3 s as gone
const THINKING_TIMEOUT_MS = 20000;   // drop "thinking" if the bot never answers (empty transcript)

// Level analysis. dBFS of the RMS over one analyser window (1024 samples, ~21 ms at 48 kHz).
const LEVEL_TICK_MS = 20;
const MIC_SPEECH_DB = -45;     // louder than this counts as the user talking ...
const MIC_SILENCE_DB = -50;    // ... quieter than this as silence (hysteresis in between)
const MIC_SPEECH_MIN_MS = 80;  // ignore clicks shorter than this
const MIC_END_HOLD_MS = 300;   // silence this long ends the utterance; the end is stamped at its start
const BOT_AUDIO_DB = -50;      // bot audio louder than this is "the bot is audible"
const BOT_AUDIO_HOLD_MS = 350; // bridge the gaps between words/sentences
const MAX_LATENCY_MS = 30000;  // anything slower is not a reply to that utterance

// ---------------------------------------------------------------------------------------------
// Public state for tests (Playwright reads window.jetvoice)
// ---------------------------------------------------------------------------------------------

const jv = {
  state: 'idle',          // idle | connecting | listening | thinking | speaking | error
  transcript: [],         // [{role: 'user'|'bot', text, final, interrupted, t, shown (bot: every text it showed)}]
  botTextRegressions: 0,  // times a bot line's text was replaced by a shorter one (should stay 0)
  latencies: [],          // voice-to-voice per turn, ms, as seen by this page
  lastLatencyMs: null,
  botAudioActive: false,  // remote audio currently non-silent (analyser)
  botAudioStarts: [],     // Date.now() of each silent -> audible change of the bot's audio
  botPeakDb: null,        // loudest bot audio level seen in this call
  micSettings: null,      // what the browser applied to the mic (echoCancellation, ...)
  userAudioActive: false, // local mic currently above the speech threshold (analyser)
  micLevelDb: null,
  botLevelDb: null,
  muted: false,
  connectionState: 'new', // RTCPeerConnection.connectionState of the current call
  pcId: null,
  botReady: false,        // RTVI bot-ready received
  error: null,            // {kind, title, detail} of the last failure
  rtviCounts: {},         // how many RTVI messages of each type arrived in this call
  pairing: 'unknown',     // unknown | paired | local (loopback, no token needed) | not-paired
  serverLatencies: [],    // the server's per-turn breakdowns ({total_ms, contributions, ...})
  lastServerLatency: null,
  sessionId: null,        // the server's id of the conversation this call is in
  joinId: null,           // the conversation this page joins (?join=...) instead of starting one
  joined: false,          // the current call joined someone else's conversation
};
window.jetvoice = jv;

// ---------------------------------------------------------------------------------------------
// DOM
// ---------------------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const el = {
  body: document.body,
  conn: $('conn'),
  state: $('state'),
  talk: $('talk'),
  talkLabel: $('talk-label'),
  mute: $('mute'),
  latency: $('latency'),
  notice: $('notice'),
  noticeTitle: $('notice-title'),
  noticeDetail: $('notice-detail'),
  noticeAction: $('notice-action'),
  transcript: $('transcript'),
  audio: $('remote-audio'),
  pair: $('pair'),
  breakdown: $('breakdown'),
  breakdownTotal: $('breakdown-total'),
  breakdownBar: $('breakdown-bar'),
  breakdownList: $('breakdown-list'),
  share: $('share'),
  joinLink: $('join-link'),
  joinCopy: $('join-copy'),
};

// ---------------------------------------------------------------------------------------------
// Pairing token: ?token=... once, then localStorage, never left in the address bar
// ---------------------------------------------------------------------------------------------

// localStorage, so the device stays paired after the tab is closed (the server keeps its token
// across restarts too); it is per origin, and only this page's own scripts run on it (CSP).
function loadToken() {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    try { localStorage.setItem(TOKEN_KEY, fromUrl); } catch { /* private mode: keep in memory */ }
    // Strip it so it doesn't end up in history, bookmarks or a screenshot.
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
    return fromUrl;
  }
  try { return localStorage.getItem(TOKEN_KEY) || sessionStorage.getItem(TOKEN_KEY); } catch { return null; }
}
const token = loadToken();

// ---------------------------------------------------------------------------------------------
// Several people, one conversation: ?join=<session id> joins a running call
// ---------------------------------------------------------------------------------------------

const SESSION_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

// Unlike the token, the join id stays in the address bar: it grants nothing to an unpaired
// device, and reloading the page should join the same conversation again.
function loadJoin() {
  const id = new URL(location.href).searchParams.get('join');
  return id && SESSION_ID_RE.test(id) ? id : null;
}
let joinId = loadJoin();
jv.joinId = joinId;

function leaveJoinMode() {
  joinId = null;
  jv.joinId = null;
  const url = new URL(location.href);
  url.searchParams.delete('join');
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
}

function joinLink(sessionId) {
  const url = new URL(location.pathname, location.origin);
  url.searchParams.set('join', sessionId);
  return url.href;
}

function showShare(s) {
  if (!s.sessionId) return;
  el.joinLink.value = joinLink(s.sessionId);
  el.share.hidden = false;
}

function hideShare() {
  el.share.hidden = true;
  el.joinLink.value = '';
}

// ---------------------------------------------------------------------------------------------
// HTTP API (all URLs relative to the page, so whatever scheme/host/port served it just works)
// ---------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(kind, status, detail) {
    super(`${kind}${status ? ` ${status}` : ''}: ${detail}`);
    this.kind = kind;      // unreachable | timeout | http | bad-answer
    this.status = status;  // HTTP status, 0 when there was no response
    this.detail = detail;
  }
}

async function api(path, { method = 'GET', body, timeoutMs = 10000, signal } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  const onAbort = () => ctl.abort();
  if (signal) signal.addEventListener('abort', onAbort, { once: true });
  let res;
  try {
    res = await fetch(new URL(path, document.baseURI), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctl.signal,
      cache: 'no-store',
      credentials: 'same-origin',
    });
  } catch (e) {
    const timedOut = ctl.signal.aborted && !(signal && signal.aborted);
    throw new ApiError(timedOut ? 'timeout' : 'unreachable', 0, e && e.message ? e.message : String(e));
  } finally {
    clearTimeout(timer);
    if (signal) signal.removeEventListener('abort', onAbort);
  }
  if (!res.ok) throw new ApiError('http', res.status, await readErrorDetail(res));
  return res;
}

// FastAPI errors are {"detail": "..."} (or a list of validation errors); anything else: the text.
async function readErrorDetail(res) {
  let text = '';
  try { text = await res.text(); } catch { /* ignore */ }
  try {
    const j = JSON.parse(text);
    const d = j && (j.detail ?? j.error ?? j.message);
    if (typeof d === 'string') return d;
    if (d !== undefined) return JSON.stringify(d).slice(0, 300);
  } catch { /* not JSON */ }
  return (text || res.statusText || '').trim().slice(0, 300);
}

// ---------------------------------------------------------------------------------------------
// Diagnostics
// ---------------------------------------------------------------------------------------------

let noticeAction = null;

function showNotice({ kind, title, detail, level = 'error', action = null }) {
  el.noticeTitle.textContent = title;
  el.noticeDetail.textContent = detail || '';
  el.notice.dataset.level = level;
  el.notice.dataset.kind = kind;
  noticeAction = action;
  el.noticeAction.hidden = !action;
  if (action) el.noticeAction.textContent = action.label;
  el.notice.hidden = false;
  if (level === 'error') jv.error = { kind, title, detail: detail || '' };
  console.warn(`[jetvoice] ${kind}: ${title} ${detail || ''}`);
}

function clearNotice(kind) {
  if (kind && el.notice.dataset.kind !== kind) return;
  el.notice.hidden = true;
  noticeAction = null;
}

el.noticeAction.addEventListener('click', () => { if (noticeAction) noticeAction.run(); });

function serverUnreachableNotice(err) {
  if (err.kind === 'timeout') {
    return { kind: 'server-timeout', title: 'The server did not answer',
      detail: 'No reply within the time limit. It may still be starting up or overloaded; try again in a moment.' };
  }
  return { kind: 'server-unreachable', title: "Can't reach the jetvoice server",
    detail: `No response from ${location.origin}. Is the server running, and is this device on the same network?` };
}

function offerErrorNotice(err) {
  if (err.kind !== 'http') {
    if (err.kind === 'bad-answer') return { kind: 'offer-rejected', title: 'The server sent an unusable answer', detail: err.detail };
    return serverUnreachableNotice(err);
  }
  if (err.status === 401 || err.status === 403) {
    setPairing('not-paired');
    return { kind: 'auth', title: `Not paired with this server (HTTP ${err.status})`,
      detail: `${err.detail ? `${err.detail}\n` : ''}Open the pairing link the server shows (it ends in ?token=…) on this device, then tap Start again.` };
  }
  if (err.status === 404 && joinId) {
    // The conversation ended (or the link was wrong): the next tap starts a new one.
    leaveJoinMode();
    return { kind: 'join-ended', title: 'That conversation has ended',
      detail: `${err.detail ? `${err.detail}\n` : ''}Tap Start to begin a new one.` };
  }
  return { kind: 'offer-rejected', title: `The server refused the call (HTTP ${err.status})`,
    detail: err.detail || 'No further detail from the server.' };
}

function micErrorNotice(e) {
  const name = e && e.name;
  if (name === 'NotAllowedError' || name === 'PermissionDeniedError' || name === 'SecurityError') {
    return { kind: 'mic-denied', title: 'Microphone access is blocked',
      detail: 'Allow the microphone for this site (tap the icon left of the address, or on iPhone: Settings › Safari › Microphone), then tap Start again.' };
  }
  if (name === 'NotFoundError' || name === 'DevicesNotFoundError' || name === 'OverconstrainedError') {
    return { kind: 'mic-missing', title: 'No microphone found',
      detail: 'Plug in or enable a microphone, then tap Start again.' };
  }
  if (name === 'NotReadableError' || name === 'TrackStartError' || name === 'AbortError') {
    return { kind: 'mic-busy', title: "The microphone couldn't be started",
      detail: 'Another app or tab may be using it. Close it and tap Start again.' };
  }
  return { kind: 'mic-error', title: "The microphone couldn't be started", detail: `${name || 'Error'}: ${e && e.message}` };
}

// The microphone needs a secure context. localhost and 127.0.0.1 already are one, so when this
// is false the page was opened over plain HTTP on a LAN address - typically from a phone.
function checkEnvironment() {
  if (!window.isSecureContext) {
    showNotice({ kind: 'insecure', title: 'This address cannot use the microphone',
      detail: `Browsers only give the microphone to HTTPS pages (or to localhost on the machine itself). You opened ${location.origin}.\nOpen the server's HTTPS address instead (https://${location.hostname}:<port>/, as printed by the server at start-up) and accept its certificate once.` });
    return false;
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showNotice({ kind: 'unsupported', title: 'This browser cannot capture the microphone',
      detail: 'Use a current Chrome, Safari or Firefox.' });
    return false;
  }
  if (!window.RTCPeerConnection) {
    showNotice({ kind: 'unsupported', title: 'This browser does not support WebRTC',
      detail: 'Use a current Chrome, Safari or Firefox.' });
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Transcript
// ---------------------------------------------------------------------------------------------

const turnEls = new Map();  // transcript entry -> its <li>; kept off the entry so tests get plain data

// The open user turn collects final transcription pieces (and shows the interim one) until the
// bot answers; the open bot turn collects the bot's text for one response.
let conv = { user: null, bot: null };

function resetConversation() {
  jv.transcript = [];
  jv.botTextRegressions = 0;
  jv.latencies = [];
  jv.lastLatencyMs = null;
  jv.serverLatencies = [];
  jv.lastServerLatency = null;
  jv.botAudioStarts = [];
  jv.botPeakDb = null;
  el.breakdown.hidden = true;
  jv.rtviCounts = {};
  jv.botReady = false;
  jv.error = null;
  turnEls.clear();
  el.transcript.replaceChildren();
  conv = { user: null, bot: null };
}

function addTurn(role) {
  const entry = { role, text: '', final: false, interrupted: false, t: Date.now() };
  jv.transcript.push(entry);
  const li = document.createElement('li');
  li.className = `turn ${role}`;
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = role === 'user' ? 'You' : 'Bot';
  const text = document.createElement('span');
  text.className = 'text';
  li.append(who, text);
  turnEls.set(entry, li);
  const stick = nearBottom();
  el.transcript.append(li);
  if (stick) scrollToBottom();
  return entry;
}

function renderTurn(entry) {
  const li = turnEls.get(entry);
  if (!li) return;
  const stick = nearBottom();
  const shown = li.querySelector('.text');
  if (entry.role === 'bot' && entry.text.length < shown.textContent.length) jv.botTextRegressions++;
  shown.textContent = entry.text;
  li.classList.toggle('interim', !entry.final);
  li.classList.toggle('interrupted', entry.interrupted);
  if (stick) scrollToBottom();
}

function removeTurn(entry) {
  const i = jv.transcript.indexOf(entry);
  if (i >= 0) jv.transcript.splice(i, 1);
  const li = turnEls.get(entry);
  if (li) li.remove();
  turnEls.delete(entry);
}

function nearBottom() {
  const t = el.transcript;
  return t.scrollHeight - t.scrollTop - t.clientHeight < 40;
}
function scrollToBottom() { el.transcript.scrollTop = el.transcript.scrollHeight; }

function onUserText(text, final) {
  text = (text || '').trim();
  if (!text) return;
  closeBotTurn();
  if (!conv.user) conv.user = { entry: addTurn('user'), finalText: '' };
  const u = conv.user;
  if (final) {
    u.finalText = u.finalText ? `${u.finalText} ${text}` : text;
    u.entry.text = u.finalText;
    u.entry.final = true;
  } else {
    u.entry.text = u.finalText ? `${u.finalText} ${text}` : text;
    u.entry.final = false;
  }
  renderTurn(u.entry);
}

function closeUserTurn() {
  if (!conv.user) return;
  const u = conv.user;
  conv.user = null;
  if (!u.finalText) {
    // Only interim text ever arrived: keep what was heard, but mark it final.
    if (!u.entry.text) { removeTurn(u.entry); return; }
  }
  u.entry.final = true;
  renderTurn(u.entry);
}

function botTurn() {
  if (!conv.bot) {
    closeUserTurn();
    const line = new BotLine();
    conv.bot = { entry: addTurn('bot'), line, llmDone: false };
    conv.bot.entry.shown = line.shown;
  }
  return conv.bot;
}

// The generated text and the spoken text merged into one line that only grows (bot_line.js).
function renderBotTurn(b) {
  b.entry.text = b.line.text;
  renderTurn(b.entry);
}

function closeBotTurn({ interrupted = false } = {}) {
  if (!conv.bot) return;
  const b = conv.bot;
  conv.bot = null;
  if (!b.entry.text) { removeTurn(b.entry); return; }
  b.entry.final = true;
  b.entry.interrupted = interrupted;
  renderTurn(b.entry);
}

// ---------------------------------------------------------------------------------------------
// Call
// ---------------------------------------------------------------------------------------------

let session = null;

function newSession() {
  return {
    closed: false,
    abort: new AbortController(),
    pc: null, dc: null, stream: null, micTrack: null,
    ctx: null, mic: null, bot: null,
    pcId: null, offerSent: false, lateCandidates: [], candidateTimer: null,
    sessionId: null, joinId: null,
    pcConnected: false, dcOpen: false, ready: false,
    timers: { ping: null, level: null, connect: null, disconnected: null, thinking: null },
    rtviUserSpeaking: false, rtviBotSpeaking: false, thinking: false,
    vad: { speaking: false, aboveSince: null, belowSince: null },
    turnEndAt: null, botBelowSince: null,
  };
}

async function start() {
  if (session) return;
  clearNotice();
  if (!checkEnvironment()) { jv.state = 'error'; render(); return; }
  const s = newSession();
  s.joinId = joinId;
  session = s;
  resetConversation();
  jv.connectionState = 'new';
  render();

  // Created inside the tap: iOS Safari and Chrome only let an AudioContext run after a gesture.
  // Analysis is a nice-to-have, so a browser without WebAudio still gets a working call.
  try {
    const AC = window.AudioContext || window.webkitAudioContext;
    s.ctx = new AC();
    if (s.ctx.state === 'suspended') s.ctx.resume().catch(() => {});
  } catch (e) {
    console.warn('[jetvoice] no WebAudio, no level analysis', e);
  }

  try {
    // Echo cancellation is what stops the bot from hearing (and interrupting) itself on a speaker.
    s.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      video: false,
    });
  } catch (e) {
    if (s.closed) return;  // hung up while the permission prompt was open
    return fail(s, micErrorNotice(e));
  }
  if (s.closed) { teardown(s); return; }

  s.micTrack = s.stream.getAudioTracks()[0];
  if (!s.micTrack) return fail(s, micErrorNotice({ name: 'NotFoundError' }));
  s.micTrack.enabled = !jv.muted;
  try { jv.micSettings = s.micTrack.getSettings(); } catch { jv.micSettings = null; }
  s.micTrack.addEventListener('ended', () => {
    if (session === s) fail(s, { kind: 'mic-lost', title: 'The microphone stopped', detail: 'It was unplugged or taken by another app. Tap Start to try again.' });
  });
  s.mic = makeAnalyser(s.ctx, s.stream);

  // Host candidates only: this is a LAN app, and a STUN server would be an outside dependency.
  const pc = new RTCPeerConnection({ iceServers: [] });
  s.pc = pc;
  // pipecat maps transceivers by creation order: index 0 is the mic/bot audio, 1 camera, 2 screen.
  // Its own JS client also adds a video sendrecv transceiver, but SmallWebRTCConnection.connect()
  // then asks for a renegotiation round to resync video, so an audio-only offer connects faster.
  pc.addTransceiver(s.micTrack, { direction: 'sendrecv', streams: [s.stream] });
  // Created before the offer so it is part of the SDP (no renegotiation later).
  s.dc = pc.createDataChannel('chat', { ordered: true });
  wireDataChannel(s);
  wirePeer(s);

  try {
    await negotiate(s, false);
  } catch (e) {
    if (s.closed) return;
    if (e instanceof ApiError) return fail(s, offerErrorNotice(e));
    return fail(s, { kind: 'webrtc-error', title: 'Could not set up the call', detail: `${e && e.name}: ${e && e.message}` });
  }
  if (s.closed) return;
  s.timers.connect = setTimeout(() => {
    if (session === s && !s.ready) {
      fail(s, { kind: 'ice-timeout', title: 'The audio connection did not come up',
        detail: 'The server answered, but no media path was found (ICE). Both devices must be on the same network, and UDP must not be blocked by a firewall or a guest/isolated Wi-Fi.' });
    }
  }, CONNECT_TIMEOUT_MS);
}

async function negotiate(s, restartPc) {
  const pc = s.pc;
  await pc.setLocalDescription(await pc.createOffer());
  await waitForIceGathering(pc, ICE_GATHER_TIMEOUT_MS);
  if (s.closed) return;
  // From here on, newly found candidates are not in the SDP we send: trickle them with PATCH.
  s.offerSent = true;
  const offer = pc.localDescription;
  const res = await api('api/offer', {
    method: 'POST',
    body: {
      sdp: offer.sdp, type: offer.type, pc_id: s.pcId || undefined, restart_pc: restartPc,
      // Only a new peer joins; a renegotiation names its pc_id instead.
      join: !s.pcId && s.joinId ? s.joinId : undefined,
    },
    timeoutMs: OFFER_TIMEOUT_MS,
    signal: s.abort.signal,
  });
  let answer;
  try { answer = await res.json(); } catch { answer = null; }
  if (!answer || typeof answer.sdp !== 'string') throw new ApiError('bad-answer', res.status, 'The answer has no SDP.');
  if (s.closed) return;
  s.pcId = answer.pc_id || s.pcId;
  jv.pcId = s.pcId;
  if (typeof answer.session_id === 'string') {
    s.sessionId = answer.session_id;
    jv.sessionId = s.sessionId;
    jv.joined = Boolean(s.joinId);
    showShare(s);
  }
  await pc.setRemoteDescription({ type: answer.type || 'answer', sdp: answer.sdp });
  flushCandidates(s);
}

// Resolve when gathering is complete, or after timeoutMs (late candidates are trickled).
function waitForIceGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

function flushCandidates(s) {
  if (s.closed || !s.pcId || s.lateCandidates.length === 0) return;
  const candidates = s.lateCandidates.splice(0).map((c) => ({
    candidate: c.candidate, sdp_mid: c.sdpMid, sdp_mline_index: c.sdpMLineIndex,
  }));
  api('api/offer', { method: 'PATCH', body: { pc_id: s.pcId, candidates }, signal: s.abort.signal })
    .catch((e) => console.warn('[jetvoice] trickle ICE failed', e));
}

function wirePeer(s) {
  const pc = s.pc;

  pc.addEventListener('icecandidate', (e) => {
    if (!e.candidate || !e.candidate.candidate || !s.offerSent) return;
    s.lateCandidates.push(e.candidate);
    // Batch: candidates tend to arrive in bursts.
    if (!s.candidateTimer) s.candidateTimer = setTimeout(() => { s.candidateTimer = null; flushCandidates(s); }, 200);
  });

  pc.addEventListener('track', (e) => {
    if (e.track.kind !== 'audio') return;
    const stream = (e.streams && e.streams[0]) || new MediaStream([e.track]);
    // Chrome only feeds a remote WebRTC stream into WebAudio while a media element plays it,
    // so the <audio> element is both the speaker output and what makes the analyser work.
    el.audio.srcObject = stream;
    playRemote();
    if (!s.bot) s.bot = makeAnalyser(s.ctx, stream);
  });

  const onState = () => {
    // Older Firefox has no connectionState: fall back to the ICE state.
    const st = pc.connectionState || mapIceState(pc.iceConnectionState);
    if (s.closed || st === jv.connectionState) return;
    jv.connectionState = st;
    if (st === 'connected') {
      s.pcConnected = true;
      clearTimeout(s.timers.disconnected);
      clearNotice('ice-disconnected');
      maybeReady(s);
    } else if (st === 'disconnected') {
      showNotice({ kind: 'ice-disconnected', level: 'warn', title: 'Connection interrupted',
        detail: 'Trying to get the audio back…' });
      clearTimeout(s.timers.disconnected);
      s.timers.disconnected = setTimeout(() => {
        if (session === s && pc.connectionState !== 'connected') {
          fail(s, { kind: 'ice-lost', title: 'The connection was lost',
            detail: 'The audio path to the server stopped working (network change or the server went away). Tap Start to call again.' });
        }
      }, DISCONNECTED_GRACE_MS);
    } else if (st === 'failed') {
      fail(s, { kind: 'ice-failed', title: 'The audio connection failed',
        detail: 'ICE could not connect this device to the server. Both must be on the same network, and UDP must not be blocked (firewall, VPN, guest/isolated Wi-Fi).' });
    } else if (st === 'closed') {
      endByServer(s);
    }
    render();
  };
  pc.addEventListener('connectionstatechange', onState);
  pc.addEventListener('iceconnectionstatechange', onState);
}

function mapIceState(ice) {
  return { checking: 'connecting', completed: 'connected' }[ice] || ice;
}

function wireDataChannel(s) {
  const dc = s.dc;
  dc.addEventListener('open', () => {
    if (s.closed) return;
    s.dcOpen = true;
    // pipecat's liveness check: without a ping for 3 s the server considers the peer gone.
    s.timers.ping = setInterval(() => {
      if (dc.readyState === 'open') dc.send(`ping: ${Date.now()}`);
    }, PING_INTERVAL_MS);
    // RTVI handshake. The server streams events without it, but it answers with bot-ready, and a
    // server with audio_in_stream_on_start=False only starts listening once it arrives.
    sendJson(s, { id: randomId(), label: 'rtvi-ai', type: 'client-ready',
      data: { version: RTVI_VERSION, about: CLIENT_ABOUT } });
    sendTrackStatus(s);
    maybeReady(s);
  });
  dc.addEventListener('close', () => {
    clearInterval(s.timers.ping);
    if (!s.closed) endByServer(s);
  });
  dc.addEventListener('message', (e) => handleDataMessage(s, e.data));
}

function maybeReady(s) {
  if (s.ready || !s.pcConnected || !s.dcOpen) return;
  s.ready = true;
  clearTimeout(s.timers.connect);
  startLevelLoop(s);
  render();
}

function sendJson(s, obj) {
  if (s.dc && s.dc.readyState === 'open') s.dc.send(JSON.stringify(obj));
}

// Tell pipecat the mic is (not) sending on purpose, so it doesn't warn about missing audio.
function sendTrackStatus(s) {
  sendJson(s, { type: 'signalling', message: { type: 'trackStatus', receiver_index: 0, enabled: !jv.muted } });
}

function randomId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function playRemote() {
  const p = el.audio.play();
  if (p && p.catch) {
    p.then(() => clearNotice('autoplay')).catch((e) => {
      if (e && e.name === 'NotAllowedError') {
        showNotice({ kind: 'autoplay', level: 'warn', title: 'Sound is blocked by the browser',
          detail: 'Tap the button to hear the bot.',
          action: { label: 'Turn sound on', run: () => {
            if (session && session.ctx) session.ctx.resume().catch(() => {});
            playRemote();
          } } });
      }
    });
  }
}

// The server is gone: peerLeft, data channel closed or the peer connection closed.
function endByServer(s) {
  if (session !== s || s.closed) return;
  teardown(s);
  session = null;
  showNotice({ kind: 'ended-by-server', level: 'warn', title: 'The call ended',
    detail: 'The server closed the connection. Tap Start to call again.' });
  jv.state = 'idle';
  render();
}

function fail(s, notice) {
  if (session === s) session = null;
  teardown(s);
  showNotice({ ...notice, level: 'error' });
  jv.state = 'error';
  render();
}

function hangUp() {
  const s = session;
  if (!s) return;
  session = null;
  teardown(s);
  clearNotice();
  jv.state = 'idle';
  render();
}

// Idempotent: also used to clean up after an await that finished once the user had hung up.
function teardown(s) {
  s.closed = true;
  s.abort.abort();
  for (const t of Object.values(s.timers)) { clearTimeout(t); clearInterval(t); }
  clearTimeout(s.candidateTimer);
  try { if (s.dc) s.dc.close(); } catch { /* ignore */ }
  if (s.pc) {
    try { s.pc.getSenders().forEach((sd) => sd.track && sd.track.stop()); } catch { /* ignore */ }
    try { s.pc.close(); } catch { /* ignore */ }
  }
  if (s.stream) s.stream.getTracks().forEach((t) => t.stop());
  for (const a of [s.mic, s.bot]) { try { if (a) a.src.disconnect(); } catch { /* ignore */ } }
  if (s.ctx && s.ctx.state !== 'closed') s.ctx.close().catch(() => {});
  el.audio.srcObject = null;
  hideShare();
  jv.joined = false;
  jv.botAudioActive = false;
  jv.userAudioActive = false;
  jv.micLevelDb = null;
  jv.botLevelDb = null;
  jv.connectionState = 'closed';
  closeUserTurn();
  closeBotTurn();
  el.body.style.setProperty('--mic-level', '0');
}

// ---------------------------------------------------------------------------------------------
// Data channel messages: pipecat signalling + RTVI events
// ---------------------------------------------------------------------------------------------

function handleDataMessage(s, data) {
  if (s.closed || typeof data !== 'string') return;
  let msg;
  try { msg = JSON.parse(data); } catch { return; }
  if (!msg || typeof msg !== 'object') return;
  if (msg.type === 'signalling') {
    const m = msg.message || {};
    if (m.type === 'peerLeft') endByServer(s);
    // pipecat only asks for this when video tracks exist; answer anyway with a fresh offer.
    else if (m.type === 'renegotiate') {
      negotiate(s, false).catch((e) => console.warn('[jetvoice] renegotiation failed', e));
    }
    return;
  }
  if (msg.label === 'rtvi-ai') handleRtvi(s, msg);
  else if (msg.label === 'jetvoice' && msg.type === 'latency') onServerLatency(msg.data);
}

// ---------------------------------------------------------------------------------------------
// Pairing indicator and the server's latency breakdown
// ---------------------------------------------------------------------------------------------

const PAIRING_TEXT = {
  unknown: 'pairing…',
  paired: 'paired',
  local: 'this machine',
  'not-paired': 'not paired',
};
const PAIRING_TITLE = {
  unknown: 'Checking the pairing with this server',
  paired: 'This device holds the server\'s pairing token',
  local: 'Opened on the server itself: no pairing token needed',
  'not-paired': 'This device has no valid pairing token: open the pairing link the server shows',
};

function setPairing(state) {
  jv.pairing = state;
  el.pair.dataset.pairing = state;
  el.pair.textContent = PAIRING_TEXT[state];
  el.pair.title = PAIRING_TITLE[state];
}

async function checkPairing() {
  try {
    const res = await api('api/pairing', { timeoutMs: 5000 });
    const body = await res.json().catch(() => ({}));
    setPairing(body && body.paired ? 'paired' : 'local');
  } catch (e) {
    if (e.kind === 'http' && (e.status === 401 || e.status === 403)) {
      setPairing('not-paired');
      showNotice({ kind: 'auth', level: 'warn', title: 'Not paired with this server',
        detail: `${e.detail ? `${e.detail}\n` : ''}Open the pairing link the server shows (it ends in ?token=…) on this device.` });
    } else {
      setPairing('unknown');
    }
  }
}

const MAX_BREAKDOWN_PARTS = 6;

// {total_ms, contributions: [{label, ms, ...}], ...} from the server, one per turn.
function onServerLatency(data) {
  if (!data || typeof data.total_ms !== 'number') return;
  jv.serverLatencies.push(data);
  jv.lastServerLatency = data;
  const parts = (Array.isArray(data.contributions) ? data.contributions : [])
    .filter((c) => c && typeof c.ms === 'number' && c.ms > 0)
    .map((c) => ({ label: String(c.label || c.key || '?'), ms: c.ms }));
  // Merge repeated labels (a turn can have several "speech synthesis" stretches), keep the order.
  const merged = [];
  for (const p of parts) {
    const same = merged.find((m) => m.label === p.label);
    if (same) same.ms += p.ms; else merged.push({ ...p });
  }
  const shown = merged.slice(0, MAX_BREAKDOWN_PARTS);
  const rest = merged.slice(MAX_BREAKDOWN_PARTS).reduce((sum, p) => sum + p.ms, 0);
  if (rest > 0) shown.push({ label: 'other', ms: rest });
  const sum = shown.reduce((acc, p) => acc + p.ms, 0) || 1;
  el.breakdownTotal.textContent = `${Math.round(data.total_ms)} ms`;
  el.breakdownBar.replaceChildren(...shown.map((p, i) => {
    const span = document.createElement('span');
    span.className = `seg-${i % 6}`;
    span.style.width = `${(100 * p.ms) / sum}%`;
    span.title = `${p.label}: ${Math.round(p.ms)} ms`;
    return span;
  }));
  el.breakdownList.replaceChildren(...shown.map((p, i) => {
    const li = document.createElement('li');
    const swatch = document.createElement('i');
    swatch.className = `seg-${i % 6}`;
    li.append(swatch, `${p.label} ${Math.round(p.ms)} ms`);
    return li;
  }));
  el.breakdown.hidden = false;
}

function handleRtvi(s, msg) {
  const d = msg.data || {};
  jv.rtviCounts[msg.type] = (jv.rtviCounts[msg.type] || 0) + 1;
  switch (msg.type) {
    case 'bot-ready':
      jv.botReady = true;
      break;

    // Turn-taking, as the server's VAD / turn detection sees it.
    case 'user-started-speaking':
      s.rtviUserSpeaking = true;
      setThinking(s, false);
      break;
    case 'user-stopped-speaking':
      s.rtviUserSpeaking = false;
      setThinking(s, true);
      break;
    case 'bot-started-speaking':
      s.rtviBotSpeaking = true;
      setThinking(s, false);
      break;
    case 'bot-stopped-speaking':
      s.rtviBotSpeaking = false;
      // The response is complete once the LLM is done and the audio has played out. Keep the turn
      // open anyway: with per-sentence TTS this can fire between sentences.
      if (conv.bot && conv.bot.llmDone && conv.bot.entry.text) {
        conv.bot.entry.final = true;
        renderTurn(conv.bot.entry);
      }
      break;
    case 'bot-interrupted':
      // pipecat sends this at every user turn start; it only cut the bot off if it was talking.
      closeBotTurn({ interrupted: s.rtviBotSpeaking || jv.botAudioActive });
      s.rtviBotSpeaking = false;
      break;

    // What the user said. user-input (protocol 2.x) and the deprecated user-transcription carry
    // the same transcription: use user-input once the server has shown it sends it.
    case 'user-input':
      if (d.input_type === 'transcription' || d.input_type === 'chat') onUserText(d.text, d.final !== false);
      break;
    case 'user-transcription':
      if (!jv.rtviCounts['user-input']) onUserText(d.text, !!d.final);
      break;

    // What the bot says.
    case 'bot-llm-started':
      // A second response with no user turn in between (e.g. after a tool call) gets its own line.
      if (conv.bot && conv.bot.llmDone) closeBotTurn();
      if (!s.rtviBotSpeaking) setThinking(s, true);
      break;
    case 'bot-llm-text': {
      if (typeof d.text !== 'string') break;
      const b = botTurn();
      b.line.addGenerated(d.text);
      renderBotTurn(b);
      break;
    }
    case 'bot-llm-stopped':
      if (conv.bot) conv.bot.llmDone = true;
      break;
    case 'bot-output': {
      if (typeof d.text !== 'string') break;
      const b = botTurn();
      // One message per segment (sentence), repeated with the same segment_id as it progresses;
      // while a segment is spoken word by word, its text is the word and the words so far are
      // in spoken_progress.
      const progress = d.spoken_status === 'in-progress' && d.spoken_progress;
      b.line.setSegment(d.segment_id, progress ? String(progress.accumulated_text || '') : d.text);
      renderBotTurn(b);
      break;
    }
    case 'bot-tts-text': {
      if (typeof d.text !== 'string') break;
      const b = botTurn();
      b.line.addTts(d.text);
      renderBotTurn(b);
      break;
    }

    case 'error':
      showNotice({ kind: 'bot-error', level: d.fatal ? 'error' : 'warn',
        title: d.fatal ? 'The bot stopped with an error' : 'The bot reported an error', detail: String(d.error || '') });
      break;
    case 'error-response':
      console.warn('[jetvoice] RTVI error-response', d.error);
      break;
    default:
      break;  // metrics, bot-tts-started/stopped, bot-transcription, ...: not shown
  }
  render();
}

function setThinking(s, on) {
  s.thinking = on;
  clearTimeout(s.timers.thinking);
  if (on) s.timers.thinking = setTimeout(() => { s.thinking = false; render(); }, THINKING_TIMEOUT_MS);
}

// ---------------------------------------------------------------------------------------------
// Audio levels: speaking indicator + voice-to-voice latency
// ---------------------------------------------------------------------------------------------

function makeAnalyser(ctx, stream) {
  if (!ctx) return null;
  try {
    const src = ctx.createMediaStreamSource(stream);
    const an = ctx.createAnalyser();
    an.fftSize = 1024;
    an.smoothingTimeConstant = 0;
    src.connect(an);  // not to the destination: the <audio> element does the playing
    const float = typeof an.getFloatTimeDomainData === 'function';
    return { src, an, float, buf: float ? new Float32Array(an.fftSize) : new Uint8Array(an.fftSize) };
  } catch (e) {
    console.warn('[jetvoice] level analysis unavailable', e);
    return null;
  }
}

function levelDb(a) {
  let sum = 0;
  if (a.float) {
    a.an.getFloatTimeDomainData(a.buf);
    for (let i = 0; i < a.buf.length; i++) sum += a.buf[i] * a.buf[i];
  } else {
    a.an.getByteTimeDomainData(a.buf);
    for (let i = 0; i < a.buf.length; i++) { const v = (a.buf[i] - 128) / 128; sum += v * v; }
  }
  const rms = Math.sqrt(sum / a.buf.length);
  return rms > 0 ? Math.max(-100, 20 * Math.log10(rms)) : -100;
}

// A timer rather than requestAnimationFrame: rAF stops in background tabs and when the screen
// is off, and the latency measurement should keep working then.
function startLevelLoop(s) {
  if (s.timers.level || (!s.mic && !s.bot)) return;
  let lastUi = -1;
  s.timers.level = setInterval(() => {
    if (s.closed) return;
    const now = performance.now();
    if (s.mic) {
      const db = levelDb(s.mic);
      jv.micLevelDb = Math.round(db);
      updateMicVad(s, db, now);
      // Ring around the talk button: -60 dB -> 0, -20 dB -> 1.
      const ui = Math.round(Math.min(1, Math.max(0, (db + 60) / 40)) * 20) / 20;
      if (ui !== lastUi) { el.body.style.setProperty('--mic-level', String(ui)); lastUi = ui; }
    }
    if (s.bot) {
      const db = levelDb(s.bot);
      jv.botLevelDb = Math.round(db);
      if (jv.botPeakDb === null || db > jv.botPeakDb) jv.botPeakDb = Math.round(db);
      updateBotAudio(s, db, now);
    }
  }, LEVEL_TICK_MS);
}

// Utterance detection on the local mic. The turn end is the first moment the level fell below
// the threshold, confirmed only once it stays there for MIC_END_HOLD_MS.
function updateMicVad(s, db, now) {
  const v = s.vad;
  if (!v.speaking) {
    // While the bot is audible, mic energy is more likely its echo than the user; a real
    // barge-in is still caught, because the bot goes quiet while the user keeps talking.
    if (db > MIC_SPEECH_DB && !jv.botAudioActive) {
      if (v.aboveSince === null) v.aboveSince = now;
      if (now - v.aboveSince >= MIC_SPEECH_MIN_MS) {
        v.speaking = true;
        v.belowSince = null;
        s.turnEndAt = null;  // talking again: an earlier pause was not the end of the turn
        jv.userAudioActive = true;
        render();
      }
    } else {
      v.aboveSince = null;
    }
  } else if (db < MIC_SILENCE_DB) {
    if (v.belowSince === null) v.belowSince = now;
    if (now - v.belowSince >= MIC_END_HOLD_MS) {
      v.speaking = false;
      v.aboveSince = null;
      s.turnEndAt = v.belowSince;
      jv.userAudioActive = false;
      render();
    }
  } else if (db > MIC_SPEECH_DB) {
    v.belowSince = null;
  }
}

function updateBotAudio(s, db, now) {
  if (db > BOT_AUDIO_DB) {
    s.botBelowSince = null;
    if (!jv.botAudioActive) {
      jv.botAudioActive = true;
      onBotAudioStart(s, now);
      setThinking(s, false);
      render();
    }
  } else if (jv.botAudioActive) {
    if (s.botBelowSince === null) s.botBelowSince = now;
    if (now - s.botBelowSince >= BOT_AUDIO_HOLD_MS) {
      jv.botAudioActive = false;
      render();
    }
  }
}

// First audible bot sound after the user stopped: that gap is the voice-to-voice latency.
function onBotAudioStart(s, now) {
  jv.botAudioStarts.push(Date.now());
  const v = s.vad;
  // A reply can start before the silence hold has confirmed the end of the utterance.
  const endAt = s.turnEndAt !== null ? s.turnEndAt : (v.speaking && v.belowSince !== null ? v.belowSince : null);
  if (endAt === null) return;
  s.turnEndAt = null;
  if (v.speaking) { v.speaking = false; v.aboveSince = null; jv.userAudioActive = false; }
  const ms = Math.round(now - endAt);
  if (ms < 0 || ms > MAX_LATENCY_MS) return;
  jv.latencies.push(ms);
  jv.lastLatencyMs = ms;
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

const STATE_TEXT = {
  idle: 'Tap to start talking',
  connecting: 'Connecting…',
  listening: 'Listening',
  thinking: 'Thinking…',
  speaking: 'Speaking',
  error: 'Not connected',
};

function deriveState() {
  const s = session;
  if (!s) return jv.state === 'error' ? 'error' : 'idle';
  if (!s.ready || jv.connectionState === 'disconnected') return 'connecting';
  if (jv.botAudioActive || s.rtviBotSpeaking) return 'speaking';
  if (s.thinking && !s.rtviUserSpeaking) return 'thinking';
  return 'listening';
}

let shown = {};
let serverOk = false;  // GET health answered

function render() {
  const state = deriveState();
  jv.state = state;
  const s = session;
  let text = STATE_TEXT[state];
  if (state === 'connecting' && s && s.ready) text = 'Reconnecting…';
  if (state === 'listening') {
    if (jv.muted) text = 'Mic muted';
    else if ((s && s.rtviUserSpeaking) || jv.userAudioActive) text = 'Listening… (hearing you)';
  }
  if (state === 'idle' && joinId) text = 'Tap to join the conversation';
  if (el.talk.disabled) text = 'Microphone unavailable here';
  const talkLabel = state === 'idle' || state === 'error' ? (joinId ? 'Join' : 'Start talking')
    : state === 'connecting' ? 'Cancel' : 'Hang up';
  const conn = state === 'idle' || state === 'error' ? (serverOk ? 'server ok' : 'offline')
    : state === 'connecting' ? 'connecting' : 'connected';
  const latency = jv.lastLatencyMs === null ? '–' : `${jv.lastLatencyMs} ms`;

  // Only touch the DOM on change: rewriting an aria-live region re-announces it.
  if (shown.state !== state) el.body.dataset.state = state;
  if (shown.text !== text) el.state.textContent = text;
  if (shown.talkLabel !== talkLabel) el.talkLabel.textContent = talkLabel;
  if (shown.conn !== conn) el.conn.textContent = conn;
  if (shown.latency !== latency) {
    el.latency.textContent = latency;
    el.latency.title = jv.latencies.length ? `last ${jv.latencies.length}: ${jv.latencies.slice(-10).join(', ')} ms` : '';
  }
  shown = { state, text, talkLabel, conn, latency };
}

function setMuted(muted) {
  jv.muted = muted;
  el.mute.setAttribute('aria-pressed', String(muted));
  const s = session;
  if (s && s.micTrack) {
    // A disabled track sends silence: the connection stays up, the server hears nothing.
    s.micTrack.enabled = !muted;
    sendTrackStatus(s);
  }
  render();
}

// ---------------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------------

el.talk.addEventListener('click', () => {
  if (session) hangUp();
  else start();
});
el.mute.addEventListener('click', () => setMuted(!jv.muted));
el.joinCopy.addEventListener('click', async () => {
  if (!el.joinLink.value) return;
  try {
    await navigator.clipboard.writeText(el.joinLink.value);
    el.joinCopy.textContent = 'Copied';
    setTimeout(() => { el.joinCopy.textContent = 'Copy link'; }, 2000);
  } catch {
    el.joinLink.select();  // no clipboard access here: selected for a manual copy
  }
});

// Leaving the page: close the call so the server frees the session now, not after a timeout.
window.addEventListener('pagehide', () => { if (session) hangUp(); });

// On load: explain up front what cannot work, check the server is there and that this device
// is paired with it.
setPairing('unknown');
if (checkEnvironment()) {
  api('health', { timeoutMs: 5000 })
    .then(() => { serverOk = true; render(); })
    .catch((e) => {
      // 503 while the models load is fine: the server is there.
      if (e.kind !== 'http') showNotice({ ...serverUnreachableNotice(e), level: 'warn' });
    });
  checkPairing();
} else {
  el.talk.disabled = true;
}
render();
