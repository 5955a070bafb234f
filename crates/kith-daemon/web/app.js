// kith's web UI. Plain ES module, no build step, no framework. Every
// element is made with h() below, which sets text as text: no string —
// least of all a contact's name, message, subject, file name or note —
// is ever parsed as markup. Live updates come from the daemon's event log
// (EventSource: it resumes from the last event id by itself).

'use strict';

// ---------------------------------------------------------------- DOM ---

/** An element: props are properties/attributes/listeners; children are
 *  nodes or strings (always text). */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'href') el.setAttribute('href', safeHref(v));
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return el;
}

function clear(el) { while (el.firstChild) el.firstChild.remove(); return el; }

/** Links a peer wrote go only to the web or a payment app. */
function safeHref(url) {
  try {
    const u = new URL(url, location.href);
    if (['http:', 'https:', 'payto:', 'mailto:'].includes(u.protocol)) return u.href;
  } catch (_) { /* not a URL */ }
  return '#';
}

const $ = (sel, root = document) => root.querySelector(sel);

// ---------------------------------------------------------------- API ---

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch('/api/v1' + path, init);
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (!r.ok) {
    const e = json && json.error;
    throw new ApiError(r.status, e ? e.code : 'http', e ? e.message : `${r.status} ${r.statusText}`);
  }
  return json;
}

const enc = encodeURIComponent;

// -------------------------------------------------------------- state ---

const state = {
  profile: null,
  conversations: [],          // as GET /conversations
  current: null,              // conversation id
  messages: [],               // of the current conversation, oldest first
  complete: false,            // no older messages to load
  replyTo: null,              // a message
  editing: null,              // a message
  introductions: [],
  personas: [],               // as GET /personas
  transfers: [],
  iceServers: [],             // STUN/TURN, as `kith up --ice-server` gave them
};

// ------------------------------------------------------------ helpers ---

function time(ms) {
  const d = new Date(ms);
  const today = new Date();
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return d.toDateString() === today.toDateString() ? hm : `${d.toLocaleDateString()} ${hm}`;
}

function size(n) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${i ? n.toFixed(n < 10 ? 1 : 0) : n} ${units[i]}`;
}

function toast(text, kind = 'error') {
  const t = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status', text });
  $('#toasts').append(t);
  setTimeout(() => t.remove(), 6000);
}

/** Runs an action; its failure is said, never thrown away. */
async function attempt(fn) {
  try { return await fn(); } catch (e) { toast(e.message || String(e)); return undefined; }
}

function conversation(id) { return state.conversations.find((c) => c.id === id); }

// ----------------------------------------------------------- markdown ---

// A small markdown subset, built as DOM: paragraphs, line breaks, quotes,
// lists, fenced and inline code, **strong**, *em*, [links](https://…) and
// bare links. Text stays text.
function markdown(src) {
  const out = document.createDocumentFragment();
  const lines = src.replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^```/.test(line)) {
      const code = [];
      i++;
      while (i < lines.length && !/^```/.test(lines[i])) code.push(lines[i++]);
      i++;
      out.append(h('pre', {}, h('code', { text: code.join('\n') })));
    } else if (/^>\s?/.test(line)) {
      const quote = [];
      while (i < lines.length && /^>\s?/.test(lines[i])) quote.push(lines[i++].replace(/^>\s?/, ''));
      out.append(h('blockquote', {}, markdown(quote.join('\n'))));
    } else if (/^\s*([-*+]|\d+[.)])\s+/.test(line)) {
      const ordered = /^\s*\d/.test(line);
      const list = h(ordered ? 'ol' : 'ul');
      while (i < lines.length && /^\s*([-*+]|\d+[.)])\s+/.test(lines[i])) {
        list.append(h('li', {}, inline(lines[i++].replace(/^\s*([-*+]|\d+[.)])\s+/, ''))));
      }
      out.append(list);
    } else if (/^#{1,6}\s/.test(line)) {
      out.append(h('p', { class: 'heading' }, inline(line.replace(/^#{1,6}\s/, ''))));
      i++;
    } else if (line.trim() === '') {
      i++;
    } else {
      const para = [];
      while (i < lines.length && lines[i].trim() !== '' && !/^(```|>|\s*([-*+]|\d+[.)])\s)/.test(lines[i])) {
        para.push(lines[i++]);
      }
      const p = h('p');
      para.forEach((l, n) => { if (n) p.append(h('br')); p.append(inline(l)); });
      out.append(p);
    }
  }
  return out;
}

function inline(text) {
  const frag = document.createDocumentFragment();
  const re = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*|_[^_\s][^_]*_)|(\[[^\]]+\]\((https?:\/\/[^\s)]+)\))|(https?:\/\/[^\s<]+[^\s<.,;:!?)\]'"])/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) frag.append(text.slice(last, m.index));
    const [all] = m;
    if (m[1]) frag.append(h('code', { text: all.slice(1, -1) }));
    else if (m[2]) frag.append(h('strong', {}, inline(all.slice(2, -2))));
    else if (m[3]) frag.append(h('em', {}, inline(all.slice(1, -1))));
    else if (m[4]) frag.append(h('a', { href: m[5], target: '_blank', rel: 'noopener noreferrer', text: all.slice(1, all.indexOf('](')) }));
    else frag.append(h('a', { href: all, target: '_blank', rel: 'noopener noreferrer', text: all }));
    last = m.index + all.length;
  }
  if (last < text.length) frag.append(text.slice(last));
  return frag;
}

// ------------------------------------------------------------- layout ---

function layout() {
  const app = clear($('#app'));
  append(app, [
    h('aside', { class: 'side', 'aria-label': 'Conversations' },
      h('header', { class: 'me' },
        h('strong', { id: 'me', text: state.profile ? state.profile.name : 'kith' }),
        h('nav', { class: 'tools' },
          h('button', { id: 'new-invite', title: 'Invite someone (a link and a QR code)', onclick: showInvite }, 'Invite'),
          h('button', { id: 'accept-link', title: 'Accept a link someone gave you', onclick: showAccept }, 'Accept link'),
          h('button', { id: 'new-group', title: 'Create a group', onclick: showNewGroup }, 'New group'),
          h('button', { id: 'show-intros', title: 'Introductions', onclick: showIntroductions }, 'Introductions', h('span', { id: 'intro-badge', class: 'badge', hidden: true })),
          h('button', { id: 'show-directories', title: 'Directories: find people, and be found, in a school\'s or a club\'s directory', onclick: showDirectories }, 'Directories'),
          h('button', { id: 'show-addresses', title: 'Contact addresses: a link many people can use to ask you for a conversation', onclick: showAddresses }, 'Addresses', h('span', { id: 'request-badge', class: 'badge', hidden: true })),
          h('button', { id: 'settings', title: 'Move to another relay, notifications', onclick: showSettings }, 'Settings'))),
      h('ul', { id: 'conversations', class: 'conversations' })),
    h('main', { id: 'pane', class: 'pane', 'aria-live': 'polite' },
      h('p', { class: 'empty', text: 'Choose a conversation, or invite someone.' })),
    h('div', { id: 'toasts', class: 'toasts' }),
    h('section', { id: 'call', class: 'call', hidden: true, 'aria-label': 'Call' }),
  ]);
}

function renderList() {
  const ul = clear($('#conversations'));
  for (const c of state.conversations) {
    const item = h('li', {},
      h('button', {
        class: `conversation${c.id === state.current ? ' current' : ''}`,
        'data-id': c.id,
        'aria-current': c.id === state.current ? 'true' : undefined,
        onclick: () => open(c.id),
      },
      h('span', { class: 'name', text: c.name }),
      c.kind === 'group' ? h('span', { class: 'tag', text: 'group' }) : null,
      c.blocked ? h('span', { class: 'tag', text: 'blocked' }) : null,
      c.state !== 'active' ? h('span', { class: 'tag', text: c.state }) : null,
      c.unread ? h('span', { class: 'unread', 'aria-label': `${c.unread} unread`, text: String(c.unread) }) : null));
    ul.append(item);
  }
  if (!state.conversations.length) ul.append(h('li', { class: 'empty', text: 'No conversations yet.' }));
  document.title = unreadTotal() ? `(${unreadTotal()}) kith` : 'kith';
}

function unreadTotal() { return state.conversations.reduce((n, c) => n + (c.unread || 0), 0); }

async function loadList() {
  state.conversations = await api('GET', '/conversations');
  renderList();
}

// ------------------------------------------------------- conversation ---

async function open(id) {
  state.current = id;
  state.messages = [];
  state.complete = false;
  state.replyTo = null;
  state.editing = null;
  document.body.classList.add('reading');
  renderList();
  const c = conversation(id);
  const pane = clear($('#pane'));
  append(pane, [
    h('header', { class: 'conv-head' },
      h('button', { class: 'back', title: 'Back to the conversations', onclick: back, text: '‹' }),
      h('h1', { id: 'conv-name', text: c ? c.name : '' }),
      h('nav', { class: 'tools' },
        c && c.kind === 'pair' && c.state === 'active' ? h('button', { id: 'call-audio', title: 'Call', onclick: () => startCall(id, false) }, 'Call') : null,
        c && c.kind === 'pair' && c.state === 'active' ? h('button', { id: 'call-video', title: 'Video call', onclick: () => startCall(id, true) }, 'Video') : null,
        h('button', { id: 'conv-info', onclick: () => showInfo(id) }, 'Info'),
        c && c.kind === 'group' ? h('button', { id: 'group-members', onclick: () => showMembers(id) }, 'Members') : null)),
    h('div', { id: 'messages', class: 'messages', tabindex: 0, onscroll: onScroll }),
    h('div', { id: 'transfers', class: 'transfers' }),
    composer(),
  ]);
  pane.addEventListener('dragover', (e) => { e.preventDefault(); pane.classList.add('dropping'); });
  pane.addEventListener('dragleave', () => pane.classList.remove('dropping'));
  pane.addEventListener('drop', (e) => {
    e.preventDefault();
    pane.classList.remove('dropping');
    for (const f of e.dataTransfer.files) sendFile(f);
  });
  await loadOlder();
  scrollToEnd();
  markRead(id);
  $('#text').focus();
}

function back() {
  document.body.classList.remove('reading');
  state.current = null;
  renderList();
}

async function markRead(id) {
  const c = conversation(id);
  if (c && c.unread) await attempt(() => api('POST', `/conversations/${enc(id)}/read`));
}

/** Older messages, a page at a time, when scrolled to the top. */
async function loadOlder() {
  if (state.complete || state.loading) return;
  state.loading = true;
  const id = state.current;
  try {
    const first = state.messages[0];
    const q = first ? `?limit=50&before=${enc(first.id)}` : '?limit=50';
    const page = await api('GET', `/conversations/${enc(id)}/messages${q}`);
    if (id !== state.current) return;
    if (page.length < 50) state.complete = true;
    state.messages = page.concat(state.messages);
    const box = $('#messages');
    const from = box.scrollHeight - box.scrollTop;
    renderMessages();
    box.scrollTop = box.scrollHeight - from;
  } catch (e) {
    toast(e.message);
  } finally {
    state.loading = false;
  }
}

function onScroll(e) { if (e.target.scrollTop < 200) loadOlder(); }

function scrollToEnd() { const box = $('#messages'); if (box) box.scrollTop = box.scrollHeight; }

function nearEnd() { const b = $('#messages'); return !b || b.scrollHeight - b.scrollTop - b.clientHeight < 120; }

function renderMessages() {
  const box = clear($('#messages'));
  if (state.complete) box.append(h('p', { class: 'start', text: 'The beginning of the conversation.' }));
  for (const m of state.messages) box.append(messageEl(m));
}

function messageEl(m) {
  const el = h('article', { class: `message${m.outgoing ? ' mine' : ''}${m.deleted ? ' deleted' : ''}`, 'data-id': m.id, tabindex: -1 });
  const head = h('header', {},
    h('span', { class: 'from', text: m.outgoing ? 'me' : m.from }),
    h('time', { datetime: new Date(m.sent_at).toISOString(), text: time(m.sent_at) }),
    m.edited ? h('span', { class: 'mark', text: 'edited' }) : null,
    m.expires_at ? h('span', { class: 'mark', title: `disappears ${time(m.expires_at)}`, text: '⏱' }) : null);
  el.append(head);
  if (m.reply_to) {
    el.append(h('blockquote', { class: 'quote', onclick: () => focusMessage(m.reply_to.id) },
      h('span', { class: 'from', text: m.reply_to.from === 'me' ? 'you' : m.reply_to.from }), ': ', m.reply_to.text));
  }
  const body = h('div', { class: 'body' });
  if (m.deleted) {
    body.append(h('em', { text: 'message deleted' }));
  } else if (m.subject !== null) {
    body.append(h('h2', { class: 'subject', text: m.subject }), markdown(m.text));
  } else if (m.timer !== null || m.call) {
    body.append(h('p', { class: 'notice', text: m.text }));
  } else if (m.file) {
    body.append(fileEl(m));
  } else if (m.payment) {
    body.append(paymentEl(m));
  } else {
    body.append(markdown(m.text));
  }
  if (m.needs_newer) body.append(h('p', { class: 'mark', text: 'sent with a newer kith: shown as its plain text' }));
  el.append(body);
  if (m.reactions.length) {
    el.append(h('div', { class: 'reactions' }, m.reactions.map((r) => h('button', {
      class: `reaction${r.mine ? ' mine' : ''}`,
      title: r.mine ? 'take your reaction back' : 'react the same',
      onclick: () => react(m, r.mine ? null : r.reaction),
    }, `${r.reaction} ${r.count}`))));
  }
  const foot = h('footer', {});
  if (m.outgoing && m.receipts) {
    const r = m.receipts;
    const word = r.of <= 1 ? (r.read ? '✓✓ read' : r.delivered ? '✓ delivered' : 'sent')
      : `read by ${r.read} of ${r.of}`;
    foot.append(h('span', { class: 'receipt', text: word }));
  }
  if (!m.deleted && m.timer === null && !m.call) {
    foot.append(h('span', { class: 'actions' },
      h('button', { class: 'act-reply', title: 'Reply', onclick: () => startReply(m) }, 'Reply'),
      ...['👍', '❤️', '😂', '😮', '🙏'].map((e) => h('button', { class: 'act-react', title: `React ${e}`, onclick: () => react(m, e) }, e)),
      m.outgoing && !m.file && !m.payment ? h('button', { class: 'act-edit', title: 'Edit', onclick: () => startEdit(m) }, 'Edit') : null,
      m.outgoing ? h('button', { class: 'act-delete', title: 'Delete for everyone', onclick: () => del(m) }, 'Delete') : null));
  }
  el.append(foot);
  return el;
}

function fileEl(m) {
  const f = m.file;
  const url = `/api/v1/conversations/${enc(m.conversation)}/messages/${enc(m.id)}/file`;
  const wrap = h('div', { class: 'file' });
  const image = /^image\/(png|jpeg|gif|webp)$/.test(f.content_type);
  if (f.saved && image) {
    wrap.append(h('a', { href: url, target: '_blank', rel: 'noopener' }, h('img', { class: 'preview', src: url, alt: f.name, loading: 'lazy' })));
  }
  wrap.append(h('div', { class: 'file-line' },
    h('span', { class: 'file-name', text: f.name }),
    h('span', { class: 'file-meta', text: ` ${size(f.size)} · ${f.content_type}` }),
    f.saved
      ? h('a', { class: 'file-open', href: url, download: f.name }, 'Save')
      : h('button', { class: 'file-download', onclick: () => download(m) }, 'Download')));
  if (f.caption) wrap.append(h('p', { class: 'caption', text: f.caption }));
  return wrap;
}

function paymentEl(m) {
  const p = m.payment;
  const wrap = h('div', { class: 'payment' },
    h('p', { text: p.description }),
    h('p', { class: 'mark', text: p.state + (p.reference ? ` · ${p.reference}` : '') }));
  if (!p.request) {
    wrap.append(h('a', { class: 'pay-open', href: p.uri.startsWith('payto:') ? p.uri : '#', text: 'Open in payment app' }));
    if (!m.outgoing && p.state === 'requested') {
      wrap.append(
        h('button', { onclick: () => answerPayment(m, 'paid') }, 'I paid'),
        h('button', { onclick: () => answerPayment(m, 'declined') }, 'Decline'));
    }
  }
  return wrap;
}

function focusMessage(id) {
  const el = $(`article[data-id="${CSS.escape(id)}"]`);
  if (el) { el.scrollIntoView({ block: 'center' }); el.focus(); }
}

/** A message new or changed: in place, or at the end. */
function upsert(m) {
  if (m.conversation !== state.current) return;
  const at = state.messages.findIndex((x) => x.id === m.id);
  const stick = nearEnd();
  if (at >= 0) {
    state.messages[at] = m;
    const old = $(`article[data-id="${CSS.escape(m.id)}"]`);
    if (old) old.replaceWith(messageEl(m));
  } else {
    // By the time its sender sent it, as `read` shows them.
    let i = state.messages.length;
    while (i > 0 && state.messages[i - 1].sent_at > m.sent_at) i--;
    state.messages.splice(i, 0, m);
    const box = $('#messages');
    const next = state.messages[i + 1] && $(`article[data-id="${CSS.escape(state.messages[i + 1].id)}"]`);
    if (next) next.before(messageEl(m)); else box.append(messageEl(m));
  }
  if (stick) scrollToEnd();
}

function removeMessage(id) {
  state.messages = state.messages.filter((m) => m.id !== id);
  const el = $(`article[data-id="${CSS.escape(id)}"]`);
  if (el) el.remove();
}

// ----------------------------------------------------------- composer ---

function composer() {
  const text = h('textarea', {
    id: 'text', rows: 1, placeholder: 'Message', title: 'Enter sends; Shift+Enter starts a new line; markdown works', 'aria-label': 'Message',
    onkeydown: (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
      if (e.key === 'Escape') cancelReply();
    },
  });
  const file = h('input', { id: 'file', type: 'file', multiple: true, hidden: true, onchange: (e) => { for (const f of e.target.files) sendFile(f); e.target.value = ''; } });
  return h('form', { id: 'composer', class: 'composer', onsubmit: (e) => { e.preventDefault(); send(); } },
    h('div', { id: 'replying', class: 'replying', hidden: true }),
    h('input', { id: 'subject', class: 'subject', placeholder: 'Subject (a mail)', 'aria-label': 'Subject', hidden: true }),
    h('div', { class: 'row' },
      h('button', { type: 'button', id: 'attach', title: 'Send a file (or drop it here)', onclick: () => file.click() }, '📎'),
      h('button', { type: 'button', id: 'mail-toggle', title: 'Write a mail with a subject', onclick: toggleMail }, 'Mail'),
      text, file,
      h('button', { type: 'submit', id: 'send', class: 'primary' }, 'Send')));
}

function toggleMail() {
  const s = $('#subject');
  s.hidden = !s.hidden;
  (s.hidden ? $('#text') : s).focus();
}

function startReply(m) {
  state.editing = null;
  state.replyTo = m;
  const r = clear($('#replying'));
  r.hidden = false;
  r.append(h('span', { text: `Replying to ${m.outgoing ? 'yourself' : m.from}: ` }), h('em', { text: m.text.slice(0, 80) }),
    h('button', { type: 'button', title: 'Cancel', onclick: cancelReply }, '✕'));
  $('#text').focus();
}

function startEdit(m) {
  state.replyTo = null;
  state.editing = m;
  const r = clear($('#replying'));
  r.hidden = false;
  r.append(h('span', { text: 'Editing your message' }), h('button', { type: 'button', title: 'Cancel', onclick: cancelReply }, '✕'));
  const t = $('#text');
  t.value = m.text;
  t.focus();
}

function cancelReply() {
  state.replyTo = null;
  state.editing = null;
  const r = $('#replying');
  if (r) { clear(r); r.hidden = true; }
}

async function send() {
  const id = state.current;
  const t = $('#text');
  const subject = $('#subject');
  const text = t.value;
  if (!text.trim()) return;
  const path = `/conversations/${enc(id)}`;
  let sent;
  if (state.editing) {
    sent = await attempt(() => api('POST', `${path}/messages/${enc(state.editing.id)}/edit`, { text }));
  } else if (!subject.hidden && subject.value.trim()) {
    sent = await attempt(() => api('POST', `${path}/mail`, { subject: subject.value, body: text }));
    if (sent) { subject.value = ''; subject.hidden = true; }
  } else {
    const body = { text };
    if (state.replyTo) body.reply_to = state.replyTo.id;
    sent = await attempt(() => api('POST', `${path}/messages`, body));
  }
  if (sent) {
    t.value = '';
    cancelReply();
    upsert(sent);
    scrollToEnd();
  }
}

async function react(m, emoji) {
  await attempt(() => api('POST', `/conversations/${enc(m.conversation)}/messages/${enc(m.id)}/react`, { emoji }));
}

async function del(m) {
  if (!confirm('Delete this message for everyone?')) return;
  await attempt(() => api('DELETE', `/conversations/${enc(m.conversation)}/messages/${enc(m.id)}`));
}

async function answerPayment(m, answer) {
  await attempt(() => api('POST', `/conversations/${enc(m.conversation)}/messages/${enc(m.id)}/payment`, { state: answer }));
}

/** A file to the daemon (its progress: this request's upload, then the
 *  daemon's own to the relay), then to the conversation. */
function sendFile(file) {
  const id = state.current;
  const bar = h('progress', { max: file.size || 1, value: 0 });
  const row = h('div', { class: 'transfer' }, h('span', { text: `Sending ${file.name} ` }), bar);
  $('#transfers').append(row);
  const xhr = new XMLHttpRequest();
  xhr.open('POST', `/api/v1/conversations/${enc(id)}/files?name=${enc(file.name)}`);
  xhr.upload.onprogress = (e) => { bar.max = e.total * 2; bar.value = e.loaded; };
  xhr.upload.onload = () => { watchTransfers(); };
  xhr.onload = () => {
    row.remove();
    let answer = null;
    try { answer = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
    if (xhr.status === 200 && answer) upsert(answer);
    else toast(answer && answer.error ? answer.error.message : `could not send ${file.name}`);
  };
  xhr.onerror = () => { row.remove(); toast(`could not send ${file.name}`); };
  xhr.send(file);
}

async function download(m) {
  watchTransfers();
  await attempt(() => api('POST', `/conversations/${enc(m.conversation)}/messages/${enc(m.id)}/download`));
}

/** While the daemon moves files, their bars. */
let watchingTransfers = false;
async function watchTransfers() {
  if (watchingTransfers) return;
  watchingTransfers = true;
  try {
    for (let idle = 0; idle < 3;) {
      const list = await api('GET', '/transfers');
      const box = $('#transfers');
      if (box) {
        for (const old of box.querySelectorAll('.relay-transfer')) old.remove();
        for (const t of list.filter((x) => x.conversation === state.current || conversation(state.current)?.name === x.conversation)) {
          box.append(h('div', { class: 'transfer relay-transfer' },
            h('span', { text: `${t.direction === 'upload' ? 'Encrypting and sending' : 'Downloading'} ${t.direction === 'upload' ? t.name : 'file'} ` }),
            h('progress', { max: t.total_bytes || 1, value: t.done_bytes })));
        }
      }
      idle = list.length ? 0 : idle + 1;
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (_) { /* the bars go; the answer says how it ended */ } finally {
    watchingTransfers = false;
    const box = $('#transfers');
    if (box) for (const old of box.querySelectorAll('.relay-transfer')) old.remove();
  }
}

// ------------------------------------------------------------ dialogs ---

/** A modal dialog with a title and content; closes on Escape. */
function dialog(title, ...content) {
  const d = h('dialog', { class: 'dialog', 'aria-label': title },
    h('header', {}, h('h2', { text: title }), h('button', { class: 'close', title: 'Close', onclick: () => d.close() }, '✕')),
    h('div', { class: 'content' }, content));
  d.addEventListener('close', () => d.remove());
  document.body.append(d);
  d.showModal();
  return d;
}

function qrImage(svg, alt) {
  return h('img', { class: 'qr', alt, src: 'data:image/svg+xml;charset=utf-8,' + enc(svg) });
}

function copyField(value, label) {
  const input = h('input', { class: 'link', readonly: true, value, 'aria-label': label });
  return h('div', { class: 'copy' }, input,
    h('button', { onclick: async () => { input.select(); await attempt(() => navigator.clipboard.writeText(value)); } }, 'Copy'));
}

// Which identity a new relationship starts with: its own (the default),
// or a persona's, shared with that persona's other relationships.
function personaPicker(id) {
  return h('select', { id, 'aria-label': 'Identity', hidden: !state.personas.length },
    h('option', { value: '', text: 'A new identity, for this relationship only' }),
    state.personas.map((p) => h('option', { value: p.name, text: `As ${p.name} (shown as ${p.display_name})` })));
}

async function loadPersonas() {
  const list = await attempt(() => api('GET', '/personas'));
  if (list) state.personas = list;
}

async function showInvite() {
  const name = h('input', { id: 'invite-name', placeholder: `Shown to them (default: ${state.profile.name})`, 'aria-label': 'Your name for them' });
  const out = h('div', { id: 'invite-out' });
  const persona = personaPicker('invite-persona');
  const d = dialog('Invite someone',
    h('p', { text: 'A one-time link: show the QR code, or send the link any way you like. It works once, for 7 days.' }),
    name, persona,
    h('button', { id: 'make-invite', class: 'primary', onclick: async () => {
      const body = name.value.trim() ? { name: name.value.trim() } : {};
      if (persona.value) body.persona = persona.value;
      const inv = await attempt(() => api('POST', '/invitations', body));
      if (!inv) return;
      clear(out).append(qrImage(inv.qr_svg, 'QR code of the invitation'), copyField(inv.web_link, 'Invitation link'));
      await loadList();
    } }, 'Make the invitation'),
    out);
  return d;
}

// An address link (…/a/…) asks for a conversation; an invitation starts one.
const isAddress = (link) => /\/a\/[^#]*#/.test(link);

function showAccept() {
  const link = h('input', { id: 'accept-input', placeholder: 'kith:… or https://…/i/… or …/a/…', 'aria-label': 'Invitation or address link' });
  const name = h('input', { id: 'accept-name', placeholder: `Your name for them (default: ${state.profile.name})`, 'aria-label': 'Your name for them' });
  const note = h('input', { id: 'accept-note', placeholder: 'Why you ask (they see it before deciding)', 'aria-label': 'Note', hidden: true });
  link.addEventListener('input', () => { note.hidden = !isAddress(link.value); });
  const persona = personaPicker('accept-persona');
  const d = dialog('Accept a link', link, name, note, persona,
    h('button', { id: 'accept-go', class: 'primary', onclick: async () => {
      const body = { link: link.value.trim() };
      if (name.value.trim()) body.name = name.value.trim();
      const address = isAddress(body.link);
      if (address && note.value.trim()) body.note = note.value.trim();
      if (persona.value) body.persona = persona.value;
      const a = await attempt(() => api('POST', '/invitations/accept', body));
      if (!a) return;
      for (const w of a.warnings) toast(w, 'info');
      d.close();
      if (address) toast('Request sent: you are connected once they accept it.', 'info');
      await loadList();
      open(a.conversation.id);
    } }, 'Accept'));
  link.focus();
}

async function showAddresses() {
  $('#request-badge').hidden = true;
  const requests = h('ul', { id: 'requests', class: 'introductions' });
  const addresses = h('ul', { id: 'addresses', class: 'introductions' });
  const label = h('input', { id: 'address-label', placeholder: 'Your name for it (only you see it)', 'aria-label': 'Address label' });
  const shown = h('input', { id: 'address-name', placeholder: `Shown to those you accept (default: ${state.profile.name})`, 'aria-label': 'Name shown' });
  const persona = personaPicker('address-persona');
  const render = async () => {
    const [reqs, addrs] = [await attempt(() => api('GET', '/requests')), await attempt(() => api('GET', '/addresses'))];
    if (reqs) {
      clear(requests);
      if (!reqs.length) requests.append(h('li', { class: 'empty', text: 'No requests waiting.' }));
      for (const r of reqs) {
        const li = h('li', { 'data-id': String(r.id) },
          h('p', { text: `${r.name} asks to talk` }),
          r.note ? h('p', { class: 'note', text: `“${r.note}”` }) : null,
          h('p', { class: 'mark', text: `via ${r.address_label ?? 'an address'}, ${time(r.received_at)}` }),
          h('button', { class: 'primary request-accept', onclick: async () => {
            const a = await attempt(() => api('POST', `/requests/${enc(String(r.id))}/accept`));
            if (a) { li.remove(); await loadList(); }
          } }, 'Accept'),
          h('button', { class: 'request-decline', title: 'They are not told', onclick: async () => {
            if (await attempt(() => api('POST', `/requests/${enc(String(r.id))}/decline`))) li.remove();
          } }, 'Decline'));
        requests.append(li);
      }
    }
    if (addrs) {
      clear(addresses);
      for (const a of addrs) {
        addresses.append(h('li', { 'data-id': a.id },
          h('p', { text: a.label ?? 'Address' }),
          h('p', { class: 'mark', text: `shown as ${a.my_name} · ${a.requests} waiting` }),
          h('details', {}, h('summary', { text: 'Link and QR code' }),
            qrImage(a.qr_svg, 'QR code of the address'), copyField(a.link.replace(/^kith:/, ''), 'Address link')),
          h('button', { class: 'danger address-delete', onclick: async () => {
            if (confirm('Delete this address? Its relay refuses further requests; conversations already started go on.')
              && await attempt(() => api('DELETE', `/addresses/${enc(a.id)}`))) render();
          } }, 'Delete')));
      }
    }
  };
  dialog('Contact addresses',
    h('h3', { text: 'Requests' }), requests,
    h('h3', { text: 'Your addresses' }),
    h('p', { class: 'mark', text: 'A link anyone can use to ask you for a conversation, until you delete it. They see nothing of each other; nothing starts until you accept.' }),
    addresses,
    h('div', { class: 'row' }, label, shown), persona,
    h('button', { id: 'address-create', onclick: async () => {
      const body = {};
      if (persona.value) body.persona = persona.value;
      if (label.value.trim()) body.label = label.value.trim();
      if (shown.value.trim()) body.display_name = shown.value.trim();
      if (await attempt(() => api('POST', '/addresses', body))) { label.value = ''; render(); }
    } }, 'New address'));
  render();
}

// The standing of an attestation, in words ('' when valid).
const standing = (s) => (s && s !== 'valid' ? ` (${s.replace(/_/g, ' ')})` : '');

async function showDirectories() {
  const joined = h('ul', { id: 'directories', class: 'introductions' });
  const results = h('ul', { id: 'directory-results', class: 'introductions' });
  const link = h('input', { id: 'directory-link', placeholder: 'https://…/d/name#… (an enrolment link) or https://…/d/name', 'aria-label': 'Directory link' });
  const persona = personaPicker('directory-persona');
  persona.firstChild.textContent = 'A persona made for this directory';
  const which = h('select', { id: 'directory-which', 'aria-label': 'Directory to search' });
  const query = h('input', { id: 'directory-query', placeholder: 'Names or words (the start of each)', 'aria-label': 'Search' });
  let dirs = [];
  const render = async () => {
    const list = await attempt(() => api('GET', '/directories'));
    if (!list) return;
    dirs = list;
    clear(joined);
    clear(which).append(...list.map((d) => h('option', { value: d.link, text: d.name })),
      h('option', { value: '', text: 'A public directory by its link (above)' }));
    if (!list.length) joined.append(h('li', { class: 'empty', text: 'No directories joined.' }));
    for (const d of list) {
      const name = h('input', { class: 'entry-name', placeholder: 'Name shown (default: the persona\'s)', 'aria-label': 'Name shown', value: d.entry?.display_name ?? '' });
      const text = h('input', { class: 'entry-text', placeholder: 'A short text (Year 12, chess club)', 'aria-label': 'Entry text', value: d.entry?.text ?? '' });
      joined.append(h('li', { 'data-name': d.name },
        h('p', {}, h('strong', { text: d.name }), ` · ${d.members_only ? 'members-only' : 'public'} · as ${d.persona}`),
        h('p', { class: 'mark', text: `root key ${d.root} · ${d.link}` }),
        d.statement ? h('p', { class: 'attestation', text: `It attests: ${d.statement}, until ${time(d.valid_until)}${standing(d.standing)}` }) : null,
        h('p', { class: 'mark', text: d.entry ? `Listed as ${d.entry.display_name}${d.entry.text ? ` — ${d.entry.text}` : ''}` : 'Not listed: people cannot find you here.' }),
        h('div', { class: 'row' }, name, text),
        h('button', { class: 'primary entry-publish', onclick: async () => {
          const body = { text: text.value.trim() };
          if (name.value.trim()) body.display_name = name.value.trim();
          if (await attempt(() => api('POST', `/directories/${enc(d.link)}/entry`, body))) { toast(`Listed in ${d.name}.`, 'info'); render(); }
        } }, d.entry ? 'Update my entry' : 'List me'),
        d.entry ? h('button', { class: 'entry-unpublish', onclick: async () => {
          if (await attempt(() => api('DELETE', `/directories/${enc(d.link)}/entry`))) render();
        } }, 'Unlist') : null,
        h('button', { class: 'danger directory-leave', onclick: async () => {
          if (confirm(`Leave ${d.name}? Your entry goes; your persona and its conversations stay.`)
            && await attempt(() => api('DELETE', `/directories/${enc(d.link)}`))) render();
        } }, 'Leave')));
    }
  };
  const search = async () => {
    const directory = which.value || link.value.trim();
    const found = await attempt(() => api('POST', '/directories/search', { directory, query: query.value }));
    if (!found) return;
    const joinedAs = dirs.find((d) => d.link === which.value)?.persona;
    clear(results);
    if (!found.length) results.append(h('li', { class: 'empty', text: 'Nobody found.' }));
    for (const e of found) {
      const note = h('input', { class: 'entry-note', placeholder: 'Why you ask (they see it)', 'aria-label': 'Note' });
      results.append(h('li', {},
        h('p', {}, h('strong', { text: e.display_name })),
        e.text ? h('p', { class: 'note', text: e.text }) : null,
        note,
        h('button', { class: 'primary entry-ask', onclick: async () => {
          const body = { link: e.address };
          if (note.value.trim()) body.note = note.value.trim();
          if (joinedAs) body.persona = joinedAs;
          const a = await attempt(() => api('POST', '/invitations/accept', body));
          if (a) { toast(`Request sent to ${e.display_name}: you are connected once they accept it.`, 'info'); await loadList(); }
        } }, joinedAs ? `Ask to talk (as ${joinedAs})` : 'Ask to talk')));
    }
  };
  query.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') search(); });
  dialog('Directories',
    h('p', { class: 'mark', text: 'A directory lists people who chose to be listed: a name, a short text, and a contact address. Finding someone leads to a contact request, never to who they are elsewhere.' }),
    h('h3', { text: 'Search' }),
    h('div', { class: 'row' }, which, query, h('button', { id: 'directory-search', onclick: search }, 'Search')),
    results,
    h('h3', { text: 'Your directories' }), joined,
    h('h3', { text: 'Join' }),
    link, persona,
    h('button', { id: 'directory-join', onclick: async () => {
      const body = { link: link.value.trim() };
      if (persona.value) body.persona = persona.value;
      const d = await attempt(() => api('POST', '/directories', body));
      if (d) { link.value = ''; toast(`Joined ${d.name}.`, 'info'); await loadPersonas(); render(); }
    } }, 'Join'));
  render();
}

function showNewGroup() {
  const name = h('input', { id: 'group-name', placeholder: 'Name', 'aria-label': 'Group name' });
  const persona = personaPicker('group-persona');
  const d = dialog('New group', name, persona,
    h('button', { id: 'group-create', class: 'primary', onclick: async () => {
      const body = { name: name.value };
      if (persona.value) body.persona = persona.value;
      const g = await attempt(() => api('POST', '/groups', body));
      if (!g) return;
      d.close();
      await loadList();
      open(g.id);
    } }, 'Create'));
  name.focus();
}

async function showMembers(id) {
  const list = h('ul', { id: 'members', class: 'members' });
  const contacts = state.conversations.filter((c) => c.kind === 'pair' && c.state === 'active');
  const pick = h('select', { id: 'add-member', 'aria-label': 'Contact to add' },
    h('option', { value: '', text: 'Add a contact…' }), contacts.map((c) => h('option', { value: c.id, text: c.name })));
  const invite = h('div', { id: 'group-link' });
  const render = async () => {
    const members = await attempt(() => api('GET', `/groups/${enc(id)}/members`));
    if (!members) return;
    const iAmAdmin = members.some((m) => m.me && m.admin);
    clear(list);
    for (const m of members) {
      list.append(h('li', {},
        h('span', { class: 'name', text: m.name + (m.me ? ' (you)' : '') }),
        m.admin ? h('span', { class: 'tag', text: 'admin' }) : null,
        iAmAdmin && !m.me ? h('button', { onclick: async () => { await attempt(() => api('POST', `/groups/${enc(id)}/admins`, { member: m.id, admin: !m.admin })); render(); } }, m.admin ? 'Not admin' : 'Make admin') : null,
        iAmAdmin && !m.me ? h('button', { onclick: async () => { if (confirm(`Remove ${m.name}?`)) { await attempt(() => api('DELETE', `/groups/${enc(id)}/members/${enc(m.id)}`)); render(); } } }, 'Remove') : null));
    }
  };
  dialog('Members', list,
    h('div', { class: 'row' }, pick, h('button', { id: 'add-member-go', onclick: async () => {
      if (!pick.value) return;
      const change = await attempt(() => api('POST', `/groups/${enc(id)}/members`, { conversation: pick.value }));
      if (change) { for (const w of change.warnings) toast(w, 'info'); render(); }
    } }, 'Add')),
    h('button', { id: 'group-invite', onclick: async () => {
      const inv = await attempt(() => api('POST', `/groups/${enc(id)}/invite`));
      if (inv) clear(invite).append(qrImage(inv.qr_svg, 'QR code of the group link'), copyField(inv.web_link, 'Group link'));
    } }, 'Invitation link'),
    invite,
    h('button', { id: 'group-leave', class: 'danger', onclick: async () => {
      if (confirm('Leave this group?')) { await attempt(() => api('POST', `/groups/${enc(id)}/leave`)); loadList(); }
    } }, 'Leave the group'));
  render();
}

async function showInfo(id) {
  const info = await attempt(() => api('GET', `/conversations/${enc(id)}`));
  if (!info) return;
  const c = info.conversation;
  const rename = h('input', { id: 'rename', value: c.name, 'aria-label': 'Name (only you see it)' });
  const timer = h('select', { id: 'timer', 'aria-label': 'Disappearing messages' },
    [['0', 'off'], ['300', '5 minutes'], ['3600', '1 hour'], ['86400', '1 day'], ['604800', '1 week']].map(([v, t]) => h('option', { value: v, text: t })));
  dialog(`About ${c.name}`,
    info.safety_number ? h('div', { class: 'safety' },
      h('p', { text: 'Safety number: compare it with theirs, in person or on a call. If it matches, no one stands between you.' }),
      h('code', { id: 'safety-number', text: info.safety_number })) : null,
    c.introduced_by ? h('p', { text: `Introduced by ${c.introduced_by}` }) : null,
    h('p', { class: 'mark', text: `Your name here: ${c.my_name}${info.persona ? ` (as your persona ${info.persona})` : ''}` }),
    info.attestations.map((a) => h('p', { class: 'attestation', text: `${a.outgoing ? 'You showed' : 'They showed'}: ${a.directory}: ${a.statement}, until ${time(a.valid_until)}${standing(a.standing)} (directory key ${a.root}${a.known ? '' : ', a directory you have not joined'})` })),
    info.links.map((l) => h('p', { class: 'link-proof', text: l.outgoing
      ? `You showed them you are also the person of ${l.name ?? `the identity ${l.identity.slice(0, 16)}…`}`
      : `They showed you they are also ${l.name ?? `the identity ${l.identity.slice(0, 16)}…`}` })),
    h('div', { class: 'row' }, rename, h('button', { onclick: async () => { await attempt(() => api('POST', `/conversations/${enc(id)}/rename`, { name: rename.value })); loadList(); } }, 'Rename')),
    h('div', { class: 'row' }, h('label', { text: 'Disappearing messages ' }, timer),
      h('button', { onclick: () => attempt(() => api('POST', `/conversations/${enc(id)}/timer`, { seconds: Number(timer.value) })) }, 'Set')),
    h('div', { class: 'row' },
      h('button', { onclick: () => attempt(() => api('POST', `/conversations/${enc(id)}/receipts`, { on: true })) }, 'Send receipts'),
      h('button', { onclick: () => attempt(() => api('POST', `/conversations/${enc(id)}/receipts`, { on: false })) }, 'No receipts')),
    c.kind === 'pair' ? h('div', { class: 'row' },
      h('button', { id: 'introduce', onclick: () => showIntroduce(id) }, 'Introduce to…'),
      h('button', { id: 'link', title: 'Show them, signed, that you are also the person of another conversation', onclick: () => showLink(id) }, 'Show them you are also…'),
      h('button', { id: c.blocked ? 'unblock' : 'block', class: 'danger', onclick: async () => {
        await attempt(() => api('POST', `/conversations/${enc(id)}/${c.blocked ? 'unblock' : 'block'}`));
        loadList();
      } }, c.blocked ? 'Unblock' : 'Block')) : null,
    h('details', {}, h('summary', { text: 'Keys and channels' }),
      h('p', {}, 'Your key here: ', h('code', { text: info.my_identity })),
      info.member_identities.map((k) => h('p', {}, 'Theirs: ', h('code', { text: k }))),
      info.channels.map((ch) => h('p', { class: 'mark', text: `${ch.role} on ${ch.relay_url}${ch.hosted ? ' (yours)' : ''}` }))),
    h('button', { class: 'danger', onclick: async () => {
      if (confirm(`Delete the conversation with ${c.name}?`)) { await attempt(() => api('DELETE', `/conversations/${enc(id)}`)); back(); loadList(); }
    } }, 'Delete the conversation'));
}

function showIntroduce(id) {
  const others = state.conversations.filter((c) => c.kind === 'pair' && c.state === 'active' && c.id !== id);
  const pick = h('select', { id: 'introduce-to', 'aria-label': 'Introduce to' }, others.map((c) => h('option', { value: c.id, text: c.name })));
  const note = h('input', { id: 'introduce-note', placeholder: 'Why they should meet (both see it)', 'aria-label': 'Note' });
  const d = dialog(`Introduce ${conversation(id)?.name ?? ''}`, pick, note,
    h('button', { id: 'introduce-go', class: 'primary', onclick: async () => {
      if (await attempt(() => api('POST', '/introductions', { a: id, b: pick.value, note: note.value }))) { d.close(); toast('Introduced: they meet if both accept.', 'info'); }
    } }, 'Introduce'));
}

function showLink(id) {
  const others = state.conversations.filter((c) => c.kind === 'pair' && c.state === 'active' && c.id !== id);
  const pick = h('select', { id: 'link-with', 'aria-label': 'The other conversation' }, others.map((c) => h('option', { value: c.id, text: c.name })));
  const d = dialog(`Show ${conversation(id)?.name ?? ''} who else you are`,
    h('p', { class: 'mark', text: 'They will see, signed by both your identities, that you are also the person they (or someone) know in the other conversation. It cannot be taken back.' }),
    pick,
    h('button', { id: 'link-go', class: 'primary', onclick: async () => {
      if (await attempt(() => api('POST', `/conversations/${enc(id)}/link`, { with: pick.value }))) { d.close(); toast('Shown.', 'info'); }
    } }, 'Show them'));
}

async function showIntroductions() {
  const list = h('ul', { id: 'introductions', class: 'introductions' });
  dialog('Introductions', list);
  const intros = await attempt(() => api('GET', '/introductions'));
  if (!intros) return;
  if (!intros.length) list.append(h('li', { class: 'empty', text: 'None yet. Introduce two contacts from a conversation’s Info.' }));
  for (const i of intros) {
    const li = h('li', { 'data-id': i.id },
      h('p', { text: i.role === 'received' ? `${i.introducer} introduces ${i.peer}` : `You introduced ${i.peer}` }),
      i.note ? h('p', { class: 'note', text: `“${i.note}”` }) : null,
      h('p', { class: 'mark', text: i.state }));
    if (i.role === 'received' && i.state === 'pending') {
      li.append(
        h('button', { class: 'primary intro-accept', onclick: async () => { if (await attempt(() => api('POST', `/introductions/${enc(i.id)}/accept`))) { li.remove(); loadList(); } } }, 'Accept'),
        h('button', { class: 'intro-decline', onclick: async () => { if (await attempt(() => api('POST', `/introductions/${enc(i.id)}/decline`))) li.remove(); } }, 'Decline'));
    }
    list.append(li);
  }
}

function showSettings() {
  const to = h('input', { id: 'move-to', placeholder: 'https://relay.example', 'aria-label': 'New relay' });
  const personaList = h('ul', { id: 'personas', class: 'introductions' });
  const personaName = h('input', { id: 'persona-name', placeholder: 'Name (only you see it): School', 'aria-label': 'Persona name' });
  const personaShown = h('input', { id: 'persona-shown', placeholder: `Shown as (default: ${state.profile.name})`, 'aria-label': 'Persona display name' });
  const renderPersonas = () => {
    clear(personaList);
    for (const p of state.personas) {
      personaList.append(h('li', {},
        h('p', { text: `${p.name}: shown as ${p.display_name}, ${p.conversations} conversation(s)` }),
        h('button', { class: 'danger', onclick: async () => {
          if (confirm(`Forget the persona ${p.name}? Its conversations keep its identity.`)
            && await attempt(() => api('DELETE', `/personas/${enc(p.name)}`))) { await loadPersonas(); renderPersonas(); }
        } }, 'Forget')));
    }
  };
  renderPersonas();
  dialog('Settings',
    h('p', { text: `You are ${state.profile.name}${state.profile.relay ? `, on ${state.profile.relay}` : ', without a relay of your own'}.` }),
    h('h3', { text: 'Move to another relay' }),
    h('p', { class: 'mark', text: 'Every channel you host moves; your contacts follow by themselves.' }),
    h('div', { class: 'row' }, to, h('button', { id: 'move-go', onclick: async () => {
      const r = await attempt(() => api('POST', '/move', { to: to.value.trim() }));
      if (!r) return;
      toast(`${r.moved.length} conversation(s) moved${r.errors.length ? `; not moved: ${r.errors.join('; ')}` : ''}`, 'info');
      const now = await attempt(() => api('GET', '/profile'));
      if (now) state.profile = now;
    } }, 'Move')),
    h('h3', { text: 'Personas' }),
    h('p', { class: 'mark', text: 'Each relationship has its own identity, unless you start it as a persona: one identity for one context (a school, a club), so the people there know one you, and nothing ties it to the rest.' }),
    personaList,
    h('div', { class: 'row' }, personaName, personaShown,
      h('button', { id: 'persona-create', onclick: async () => {
        const body = { name: personaName.value.trim() };
        if (personaShown.value.trim()) body.display_name = personaShown.value.trim();
        if (await attempt(() => api('POST', '/personas', body))) { personaName.value = ''; personaShown.value = ''; await loadPersonas(); renderPersonas(); }
      } }, 'New persona')),
    h('h3', { text: 'Notifications' }),
    h('button', { id: 'notify', onclick: async () => {
      if (!('Notification' in window)) return toast('This browser shows no notifications.');
      const p = await Notification.requestPermission();
      toast(p === 'granted' ? 'New messages will be notified while this page is in the background.' : 'Notifications stay off.', 'info');
    } }, 'Notify me of new messages'));
}

// -------------------------------------------------------------- calls ---

// A call is WebRTC between two browsers; its offer and answer (with their
// ICE candidates, gathered before sending) travel as kith messages, end to
// end encrypted, so no signalling server sees them. Once connected, the
// DTLS certificate the other side used must be the one its description
// (which came through kith) names: that binds the media keys to the
// conversation. A call whose fingerprints differ is hung up.
const call = { pc: null, id: null, conv: null, stream: null, remoteSdp: null, verified: false };
window.kithCall = call; // for the browser tests' getStats()

function callPanel(...content) {
  const panel = clear($('#call'));
  panel.hidden = false;
  append(panel, content);
  return panel;
}

function closePanel() { const p = $('#call'); if (p) { clear(p); p.hidden = true; } }

async function media(video) {
  return navigator.mediaDevices.getUserMedia({ audio: true, video: video ? { width: 640, height: 480 } : false });
}

/** Waits until every ICE candidate is in the local description (at most 3 s). */
function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((ok) => {
    const done = () => { if (pc.iceGatheringState === 'complete') { pc.removeEventListener('icegatheringstatechange', done); ok(); } };
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(ok, 3000);
  });
}

function peer(video) {
  const pc = new RTCPeerConnection({ iceServers: state.iceServers });
  const remote = h('video', { id: 'remote-video', autoplay: true, playsInline: true });
  const local = h('video', { id: 'local-video', autoplay: true, playsInline: true, muted: true });
  local.muted = true;
  pc.addEventListener('track', (e) => { remote.srcObject = e.streams[0]; });
  pc.addEventListener('connectionstatechange', () => {
    const status = $('#call-status');
    if (status) status.textContent = pc.connectionState === 'connected' ? 'connected, checking the keys…' : pc.connectionState;
    if (pc.connectionState === 'connected') verifyKeys();
    if (pc.connectionState === 'failed') hangUp();
  });
  return { pc, remote, local, video };
}

function inCallPanel(name, p) {
  callPanel(
    h('p', { class: 'who' }, h('strong', { text: name }), ' ', h('span', { id: 'call-status', text: 'calling…' })),
    h('div', { class: 'videos' }, p.remote, p.video ? p.local : null),
    h('div', { class: 'row' },
      h('button', { id: 'mute', onclick: (e) => {
        const track = call.stream && call.stream.getAudioTracks()[0];
        if (track) { track.enabled = !track.enabled; e.target.textContent = track.enabled ? 'Mute' : 'Unmute'; }
      } }, 'Mute'),
      h('button', { id: 'hang-up', class: 'danger', onclick: hangUp }, 'Hang up')));
}

async function startCall(conv, video) {
  if (call.pc) return toast('You are already in a call.');
  const c = conversation(conv);
  let stream;
  try { stream = await media(video); } catch (e) { return toast(`No microphone or camera: ${e.message}`); }
  const p = peer(video);
  Object.assign(call, { pc: p.pc, conv, stream, id: null, remoteSdp: null, verified: false });
  stream.getTracks().forEach((t) => p.pc.addTrack(t, stream));
  p.local.srcObject = stream;
  inCallPanel(c ? c.name : '', p);
  await p.pc.setLocalDescription(await p.pc.createOffer());
  await gathered(p.pc);
  const rang = await attempt(() => api('POST', `/conversations/${enc(conv)}/calls`, { video, sdp: p.pc.localDescription.sdp }));
  if (!rang) return endLocal();
  call.id = rang.id;
  const status = $('#call-status');
  if (status) status.textContent = 'ringing…';
}

function ringing(conv, c) {
  const who = conversation(conv);
  callPanel(
    h('p', { class: 'who' }, h('strong', { text: who ? who.name : '' }), c.video ? ' is video calling you' : ' is calling you'),
    h('div', { class: 'row' },
      h('button', { id: 'call-accept', class: 'primary', onclick: () => acceptCall(conv, c) }, 'Accept'),
      h('button', { id: 'call-decline', class: 'danger', onclick: async () => {
        closePanel();
        await attempt(() => api('POST', `/conversations/${enc(conv)}/calls/${enc(c.id)}`, { step: 'decline' }));
      } }, 'Decline')));
  if (document.hidden && 'Notification' in window && Notification.permission === 'granted') {
    new Notification(who ? who.name : 'kith', { body: c.video ? 'video call' : 'call', tag: `call-${c.id}` });
  }
}

async function acceptCall(conv, c) {
  const session = await attempt(() => api('GET', `/conversations/${enc(conv)}/calls/${enc(c.id)}`));
  if (!session || !session.offer) return closePanel();
  let stream;
  try { stream = await media(c.video); } catch (e) { return toast(`No microphone or camera: ${e.message}`); }
  const p = peer(c.video);
  Object.assign(call, { pc: p.pc, conv, stream, id: c.id, remoteSdp: session.offer, verified: false });
  stream.getTracks().forEach((t) => p.pc.addTrack(t, stream));
  p.local.srcObject = stream;
  const who = conversation(conv);
  inCallPanel(who ? who.name : '', p);
  await p.pc.setRemoteDescription({ type: 'offer', sdp: session.offer });
  await p.pc.setLocalDescription(await p.pc.createAnswer());
  await gathered(p.pc);
  const answered = await attempt(() => api('POST', `/conversations/${enc(conv)}/calls/${enc(c.id)}`, { step: 'answer', data: p.pc.localDescription.sdp }));
  if (!answered) endLocal();
}

/** The DTLS fingerprint the description names, as `SHA-256 AB:CD:…`. */
function sdpFingerprint(sdp) {
  const m = /^a=fingerprint:(\S+) ([0-9A-Fa-f:]+)/m.exec(sdp || '');
  return m ? `${m[1].toUpperCase()} ${m[2].toUpperCase()}` : null;
}

async function verifyKeys() {
  const stats = await call.pc.getStats();
  let certId = null;
  stats.forEach((s) => { if (s.type === 'transport' && s.remoteCertificateId) certId = s.remoteCertificateId; });
  const cert = certId && stats.get(certId);
  const seen = cert ? `${cert.fingerprintAlgorithm.toUpperCase()} ${cert.fingerprint.toUpperCase()}` : null;
  const expected = sdpFingerprint(call.remoteSdp);
  const status = $('#call-status');
  if (!seen || seen !== expected) {
    toast('The call’s keys are not the ones that came through kith: hung up.');
    return hangUp();
  }
  call.verified = true;
  if (status) status.textContent = 'connected · keys verified';
}

async function hangUp() {
  const { conv, id } = call;
  endLocal();
  if (conv && id) await attempt(() => api('POST', `/conversations/${enc(conv)}/calls/${enc(id)}`, { step: 'hangup' }));
}

function endLocal() {
  if (call.stream) call.stream.getTracks().forEach((t) => t.stop());
  if (call.pc) call.pc.close();
  Object.assign(call, { pc: null, id: null, conv: null, stream: null, remoteSdp: null, verified: false });
  closePanel();
}

async function onCall(e) {
  const c = e.call;
  if (!c) return;
  const conv = e.conversation;
  if (c.state === 'ringing' && !c.outgoing && !call.pc) {
    ringing(conv, c);
  } else if (c.state === 'active' && c.outgoing && call.id === c.id && !call.remoteSdp && call.pc) {
    const session = await attempt(() => api('GET', `/conversations/${enc(conv)}/calls/${enc(c.id)}`));
    if (session && session.answer && call.pc && !call.remoteSdp) {
      call.remoteSdp = session.answer;
      await call.pc.setRemoteDescription({ type: 'answer', sdp: session.answer });
    }
  } else if (['ended', 'missed', 'declined'].includes(c.state)) {
    if (call.id === c.id) {
      if (c.state === 'declined') toast('The call was declined.', 'info');
      endLocal();
    } else if (!call.pc) {
      closePanel();
    }
  }
}

// -------------------------------------------------------------- live ---

function notify(m) {
  if (!document.hidden || m.outgoing || !('Notification' in window) || Notification.permission !== 'granted') return;
  const c = conversation(m.conversation);
  // A notification's title and body are text, never markup.
  new Notification(c ? c.name : m.from, { body: m.deleted ? '' : m.subject || m.text.slice(0, 200), tag: m.conversation });
}

let listTimer = null;
function refreshListSoon() {
  clearTimeout(listTimer);
  listTimer = setTimeout(() => attempt(loadList), 100);
}

function live() {
  const source = new EventSource('/api/v1/events?from=now');
  const on = (kind, fn) => source.addEventListener(kind, (e) => { try { fn(JSON.parse(e.data)); } catch (err) { console.error(err); } });
  on('message', (e) => {
    if (!e.message) return;
    upsert(e.message);
    notify(e.message);
    if (e.message.conversation === state.current && !e.message.outgoing && !document.hidden) markRead(state.current);
  });
  on('message-changed', (e) => { if (e.message) upsert(e.message); });
  on('message-removed', (e) => { if (e.conversation === state.current) removeMessage(e.id); });
  on('conversation', (e) => {
    if (e.state) {
      const at = state.conversations.findIndex((c) => c.id === e.state.id);
      if (at >= 0) state.conversations[at] = e.state; else state.conversations.unshift(e.state);
      state.conversations.sort((a, b) => b.last_activity - a.last_activity);
      renderList();
      if (e.state.id === state.current) { const n = $('#conv-name'); if (n) n.textContent = e.state.name; }
    }
  });
  on('conversation-removed', () => refreshListSoon());
  on('call', onCall);
  on('introduction', (e) => {
    if (e.introduction && e.introduction.role === 'received' && e.introduction.state === 'pending') {
      const b = $('#intro-badge');
      b.hidden = false;
      b.textContent = '•';
      toast(`${e.introduction.introducer} introduces ${e.introduction.peer}: see Introductions`, 'info');
    }
  });
  on('request', (e) => {
    if (!e.request) return;
    const b = $('#request-badge');
    b.hidden = false;
    b.textContent = '•';
    toast(`Contact request from ${e.request.name}: see Addresses`, 'info');
  });
  on('gap', () => { refreshListSoon(); if (state.current) open(state.current); });
  document.addEventListener('visibilitychange', () => { if (!document.hidden && state.current) markRead(state.current); });
}

// -------------------------------------------------------------- start ---

async function start() {
  try {
    state.profile = await api('GET', '/profile');
  } catch (e) {
    const app = clear($('#app'));
    app.append(h('div', { class: 'signin' },
      h('h1', { text: 'kith' }),
      h('p', { text: e.status === 401
        ? 'Open the address `kith up` printed (it signs this browser in), or run `kith up` again to see it.'
        : `The daemon did not answer: ${e.message}` })));
    return;
  }
  layout();
  await loadPersonas();
  const calls = await attempt(() => api('GET', '/calls/config'));
  if (calls) state.iceServers = calls.ice_servers;
  await attempt(loadList);
  live();
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && document.body.classList.contains('reading') && !document.querySelector('dialog[open]')) back();
  });
}

start();
