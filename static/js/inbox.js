/*
 * inbox.html — conversations with unread counts, the open conversation's messages, sending, and
 * live updates over the WebSocket (with catch-up through after_id after a reconnect). A
 * session_request message renders as a card; the tutor accepts or rejects from it.
 */
(function () {
  'use strict';
  const A = window.Astegni;
  const h = A.h;
  const T = window.I18n.t;
  const $ = function (id) { return document.getElementById(id); };

  const state = {
    me: null,
    conversations: [],
    currentId: null,
    messages: new Map(), // id -> message, of the open conversation
    elements: new Map(), // id -> element
    lastId: 0,
    oldestId: null,
    hasMore: false,
    lastReadSent: 0,
    loadingThread: 0,
  };

  // ---------------------------------------------------------------- conversations
  function otherName(c) {
    if (c.other_user && c.other_user.name) return c.other_user.name;
    if (c.name) return c.name;
    const others = (c.participants || []).filter(function (p) { return (p.user_id || p.id) !== state.me.id; });
    return others.map(function (p) { return p.name || p.full_name || T('chat.user_number', { id: p.user_id || p.id }); }).join(', ') || T('inbox.conversation');
  }

  function preview(m) {
    if (!m) return T('chat.no_messages');
    if (m.is_deleted) return T('chat.deleted');
    let text;
    if (m.message_type === 'session_request') {
      // The list's last_message carries no media_metadata: fall back to the message text.
      const md = m.media_metadata || {};
      const detail = md.package_name || m.content || '';
      text = detail.indexOf('Session request') === 0 ? detail : T('chat.session_request') + (detail ? ': ' + detail : '');
    } else text = m.content || '';
    return (m.sender_user_id === state.me.id && m.message_type !== 'system' ? T('chat.you_prefix') : '') + text;
  }

  function activity(c) {
    return (c.last_message && c.last_message.created_at) || c.last_message_at || c.updated_at || c.created_at || '';
  }

  function sortConversations() {
    state.conversations.sort(function (a, b) {
      const x = new Date(activity(a)).getTime() || 0;
      const y = new Date(activity(b)).getTime() || 0;
      return y - x || b.id - a.id;
    });
  }

  function renderConversations() {
    const list = $('conversation-list');
    const focusedId = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.conversationId : null;
    A.clear(list);
    sortConversations();
    let total = 0;
    state.conversations.forEach(function (c) {
      const unread = c.id === state.currentId ? 0 : c.unread_count || 0;
      total += unread;
      const name = otherName(c);
      const button = h(
        'button',
        {
          type: 'button',
          dataset: { conversationId: String(c.id) },
          'aria-current': c.id === state.currentId ? 'true' : null,
          onclick: function () { openConversation(c.id); },
        },
        h('span', { className: 'avatar avatar-sm', 'aria-hidden': 'true' }, A.initials(name)),
        h('span', { className: 'name' }, name),
        h('span', { className: 'when' }, A.timeLabel(activity(c))),
        h('span', { className: 'preview' }, preview(c.last_message)),
        unread
          ? h('span', { className: 'badge badge-count unread-count', 'aria-label': unread + ' unread' }, String(unread))
          : h('span')
      );
      A.append(list, h('li', { className: 'conv-item' + (unread ? ' unread' : ''), dataset: { conversationId: String(c.id) } }, button));
    });
    $('conversations-empty').hidden = state.conversations.length > 0;
    const badge = $('total-unread');
    badge.hidden = !total;
    badge.textContent = total ? String(total) : '';
    document.title = (total ? '(' + total + ') ' : '') + T('inbox.inbox_astegni');
    if (focusedId) {
      const again = list.querySelector('button[data-conversation-id="' + CSS.escape(focusedId) + '"]');
      if (again) again.focus();
    }
  }

  async function loadConversations() {
    const all = [];
    let cursor = null;
    // A few pages at most: the list shows the most recent conversations.
    for (let page = 0; page < 5; page++) {
      const data = await A.get('/api/chat/conversations?limit=50' + (cursor ? '&before=' + encodeURIComponent(cursor) : ''));
      all.push.apply(all, data.conversations || []);
      cursor = data.next_cursor;
      if (!cursor) break;
    }
    state.conversations = all;
    renderConversations();
  }

  let reloadTimer = null;
  function reloadConversationsSoon() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(function () {
      loadConversations().catch(function () {});
    }, 150);
  }

  function findConversation(id) {
    return state.conversations.find(function (c) { return c.id === id; });
  }

  // ---------------------------------------------------------------- messages
  function isTutorOf(md) {
    return state.me.role_ids && state.me.role_ids.tutor != null && Number(state.me.role_ids.tutor) === Number(md.tutor_id);
  }

  function requestCard(m) {
    const md = m.media_metadata || {};
    const requestId = md.session_request_id || md.request_id;
    const status = md.status || 'pending';
    const facts = h('dl', { className: 'facts' });
    const rows = [
      [T('requests.package_price'), md.hourly_rate != null ? T('requests.money_per_hour', { money: A.money(md.hourly_rate) }) : ''],
      [T('requests.offer'), md.counter_offer_price != null ? T('requests.money_per_hour', { money: A.money(md.counter_offer_price) }) : ''],
      [T('requests.schedule'), A.scheduleSummary(md)],
      [T('requests.for'), md.requester_type === 'parent' ? md.requested_to_name || T('chat.their_child') : ''],
      [T('chat.requested_by'), md.requester_name || m.sender_name || ''],
    ];
    rows.forEach(function (row) {
      if (row[1]) A.append(facts, h('dt', null, row[0]), h('dd', null, row[1]));
    });
    const card = h(
      'article',
      { className: 'request-card', dataset: { requestId: String(requestId), status: status }, 'aria-label': T('chat.session_request') },
      h('div', { className: 'head' }, h('span', { className: 'title' }, T('chat.session_request')), A.statusBadge(status)),
      h('h3', null, md.package_name || T('requests.package_number', { id: md.package_id })),
      facts,
      md.message ? h('p', { className: 'quote' }, '“' + md.message + '”') : null,
      status === 'rejected' && md.rejected_reason ? h('p', { className: 'reason' }, T('requests.reason', { reason: md.rejected_reason })) : null
    );
    if (status === 'pending' && requestId) {
      const canRespond = isTutorOf(md) && m.sender_user_id !== state.me.id;
      const canCancel = m.sender_user_id === state.me.id;
      if (canRespond && state.me.active_role !== 'tutor') {
        A.append(card, h('p', { className: 'small muted' }, T('chat.switch_to_tutor')));
      } else if (canRespond || canCancel) {
        A.append(
          card,
          A.sessionRequests.actions({
            requestId: requestId,
            canRespond: canRespond,
            canCancel: canCancel,
            onDone: function (result) {
              applyRequestUpdate({ session_request_id: requestId, status: result.status, rejected_reason: result.rejected_reason });
            },
          })
        );
      }
    }
    return card;
  }

  function renderMessage(m) {
    const mine = m.sender_user_id === state.me.id;
    const when = A.dateTimeLabel(m.created_at);
    if (m.message_type === 'system') {
      return h('div', { className: 'msg-system', dataset: { messageId: String(m.id) } }, m.content || '', ' · ', when);
    }
    let body;
    if (m.is_deleted) body = h('div', { className: 'bubble' }, T('chat.deleted'));
    else if (m.message_type === 'session_request') body = requestCard(m);
    else body = h('div', { className: 'bubble' }, m.content || '');
    return h(
      'div',
      { className: 'msg' + (mine ? ' mine' : '') + (m.is_deleted ? ' deleted' : ''), dataset: { messageId: String(m.id), type: m.message_type } },
      body,
      h('div', { className: 'meta' }, (mine ? T('chat.you') : m.sender_name || '') + (mine || m.sender_name ? ' · ' : '') + when + (m.edited_at && !m.is_deleted ? ' · ' + T('chat.edited') : ''))
    );
  }

  function nearBottom() {
    const box = $('messages');
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  function scrollToBottom() {
    const box = $('messages');
    box.scrollTop = box.scrollHeight;
  }

  /** Insert or replace a message of the open conversation, keeping id order. */
  function upsertMessage(m) {
    const box = $('messages');
    const existing = state.elements.get(m.id);
    const el = renderMessage(m);
    state.messages.set(m.id, m);
    state.elements.set(m.id, el);
    if (existing) {
      // Keep keyboard focus inside a card whose status changed under it.
      existing.replaceWith(el);
      return;
    }
    let after = null;
    state.elements.forEach(function (other, id) {
      if (id < m.id && other !== el && other.parentNode === box && (!after || id > after.id)) after = { id: id, el: other };
    });
    if (after) after.el.after(el);
    else {
      const older = $('load-older');
      if (older && older.parentNode === box) older.after(el);
      else box.prepend(el);
    }
    state.lastId = Math.max(state.lastId, m.id);
    state.oldestId = state.oldestId == null ? m.id : Math.min(state.oldestId, m.id);
  }

  function renderLoadOlder() {
    const existing = $('load-older');
    if (existing) existing.remove();
    if (!state.hasMore) return;
    const button = h('button', { type: 'button', id: 'load-older', className: 'btn btn-secondary btn-sm load-older' }, T('chat.load_earlier'));
    button.addEventListener('click', loadOlder);
    $('messages').prepend(button);
  }

  function sortById(list) {
    return list.slice().sort(function (a, b) { return a.id - b.id; });
  }

  async function fetchMessages(conversationId, query) {
    return A.get('/api/chat/messages/' + encodeURIComponent(conversationId) + '?limit=50' + (query || ''));
  }

  async function openConversation(id) {
    const token = ++state.loadingThread;
    state.currentId = id;
    state.messages = new Map();
    state.elements = new Map();
    state.lastId = 0;
    state.oldestId = null;
    state.lastReadSent = 0;
    state.threadLoaded = false;
    const c = findConversation(id);
    const name = c ? otherName(c) : T('inbox.conversation');
    $('thread-placeholder').hidden = true;
    $('thread-header').hidden = false;
    $('messages').hidden = false;
    $('composer').hidden = false;
    $('thread-title').textContent = name;
    $('thread-avatar').textContent = A.initials(name);
    $('inbox').classList.add('show-thread');
    A.clear($('messages'));
    history.replaceState(null, '', 'inbox.html?conversation=' + encodeURIComponent(id));
    if (c) c.unread_count = 0;
    renderConversations();
    try {
      const data = await fetchMessages(id, '');
      if (token !== state.loadingThread) return;
      state.hasMore = !!data.has_more;
      sortById(data.messages || []).forEach(upsertMessage);
      renderLoadOlder();
      scrollToBottom();
      state.threadLoaded = true;
      markRead();
    } catch (error) {
      if (token !== state.loadingThread) return;
      if (error.status === 404) {
        showError(T('chat.unavailable'));
      } else if (error.status !== 401) showError(T('chat.messages_failed', { error: error.message }));
    }
  }

  async function loadOlder() {
    if (state.oldestId == null) return;
    const box = $('messages');
    const before = box.scrollHeight;
    const id = state.currentId;
    try {
      const data = await fetchMessages(id, '&before_id=' + state.oldestId);
      if (id !== state.currentId) return;
      state.hasMore = !!data.has_more;
      sortById(data.messages || []).forEach(upsertMessage);
      renderLoadOlder();
      box.scrollTop = box.scrollHeight - before;
    } catch (error) {
      A.toast(T('chat.earlier_failed', { error: error.message }), 'error');
    }
  }

  /** After a reconnect: everything after the last message we have, page by page. */
  async function catchUp() {
    const id = state.currentId;
    if (id == null || !state.threadLoaded) return;
    for (let page = 0; page < 20; page++) {
      const data = await fetchMessages(id, '&after_id=' + state.lastId);
      if (id !== state.currentId) return;
      const list = sortById(data.messages || []);
      const stick = nearBottom();
      list.forEach(upsertMessage);
      if (stick) scrollToBottom();
      if (!data.has_more || !list.length) break;
    }
    markRead();
  }

  async function markRead() {
    if (state.currentId == null || !state.lastId || state.lastId <= state.lastReadSent) return;
    if (document.visibilityState === 'hidden') return;
    const last = state.lastId;
    state.lastReadSent = last;
    try {
      await A.request('POST', '/api/chat/conversations/' + encodeURIComponent(state.currentId) + '/read', { last_read_message_id: last });
    } catch (error) {
      state.lastReadSent = 0;
    }
  }

  function showError(message) {
    const box = $('inbox-error');
    box.textContent = message;
    box.hidden = !message;
  }

  // ---------------------------------------------------------------- sending
  function clientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return 'c' + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  async function sendMessage(event) {
    event.preventDefault();
    const input = $('message-input');
    const content = input.value.trim();
    if (!content || state.currentId == null) return;
    const button = $('send-button');
    button.disabled = true;
    const body = { conversation_id: state.currentId, content: content, message_type: 'text', client_message_id: clientId() };
    try {
      let result;
      for (let attempt = 0; ; attempt++) {
        try {
          result = await A.request('POST', '/api/chat/messages', body);
          break;
        } catch (error) {
          // A network failure is retried with the same client_message_id: never a duplicate.
          if (error instanceof A.ApiError || attempt >= 2) throw error;
          await new Promise(function (r) { setTimeout(r, 500 * (attempt + 1)); });
        }
      }
      input.value = '';
      const m = result.data.message || result.data;
      if (m.conversation_id === state.currentId) {
        upsertMessage(m);
        scrollToBottom();
      }
      noteMessage(m);
      input.focus();
    } catch (error) {
      A.toast(T('chat.not_sent', { error: error.message }), 'error');
    } finally {
      button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- live events
  /** Keep the conversation list in step with a new or changed message. */
  function noteMessage(m, isNew) {
    const c = findConversation(m.conversation_id);
    if (!c) {
      reloadConversationsSoon();
      return;
    }
    if (!c.last_message || m.id >= c.last_message.id) c.last_message = m;
    if (isNew && m.sender_user_id !== state.me.id && !(m.conversation_id === state.currentId && document.visibilityState !== 'hidden')) {
      c.unread_count = (c.unread_count || 0) + 1;
    }
    renderConversations();
  }

  function applyRequestUpdate(data) {
    const requestId = data.session_request_id || data.request_id || data.id;
    if (requestId == null) return;
    state.messages.forEach(function (m) {
      const md = m.media_metadata;
      if (m.message_type !== 'session_request' || !md) return;
      if (String(md.session_request_id || md.request_id) !== String(requestId)) return;
      if (!data.status || md.status === data.status) return;
      const updated = Object.assign({}, m, { media_metadata: Object.assign({}, md, { status: data.status }) });
      if (data.rejected_reason) updated.media_metadata.rejected_reason = data.rejected_reason;
      upsertMessage(updated);
    });
  }

  function onEvent(type, data) {
    const m = data.message || data;
    switch (type) {
      case 'message.created':
        if (m.conversation_id === state.currentId) {
          const stick = nearBottom() || m.sender_user_id === state.me.id;
          upsertMessage(m);
          if (stick) scrollToBottom();
          markRead();
        }
        noteMessage(m, true);
        break;
      case 'message.updated':
      case 'message.deleted':
        if (m.conversation_id === state.currentId && state.messages.has(m.id)) {
          const merged = Object.assign({}, state.messages.get(m.id), m);
          if (type === 'message.deleted') merged.is_deleted = true;
          upsertMessage(merged);
        }
        noteMessage(m, false);
        break;
      case 'session_request.updated':
        applyRequestUpdate(data);
        break;
      case 'read.updated':
        // Another tab of this user read a conversation: take its unread count from the server.
        if (data.user_id === state.me.id) reloadConversationsSoon();
        break;
      default:
        break;
    }
  }

  // ---------------------------------------------------------------- start
  async function start() {
    A.renderHeader('inbox.html');
    try {
      state.me = await A.requireLogin();
    } catch (error) {
      if (error.status !== 401) showError(T('chat.account_failed', { error: error.message }));
      return;
    }
    A.renderHeader('inbox.html');
    $('composer').addEventListener('submit', sendMessage);
    $('message-input').addEventListener('keydown', function (event) {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $('composer').requestSubmit();
      }
    });
    $('back-to-list').addEventListener('click', function () {
      $('inbox').classList.remove('show-thread');
      const current = document.querySelector('.conv-item button[aria-current="true"]');
      if (current) current.focus();
    });
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible') markRead();
    });
    try {
      await loadConversations();
    } catch (error) {
      if (error.status !== 401) showError(T('chat.conversations_failed', { error: error.message }));
      return;
    }
    const wanted = parseInt(A.param('conversation'), 10);
    if (wanted) openConversation(wanted);
    else if (state.conversations.length && window.matchMedia('(min-width: 721px)').matches) {
      openConversation(state.conversations[0].id);
    }
    A.live = A.connectLive({
      onEvent: onEvent,
      // Also on the first connection: anything written between the page's first load and the
      // socket opening would otherwise be missed.
      onOpen: function () {
        loadConversations().catch(function () {});
        catchUp().catch(function () {});
      },
    });
  }

  window.I18n.ready.then(start);
})();
