/*
 * requests.html — "My requests" (students and parents: status, cancel) or, for the tutor role,
 * the incoming requests (accept / reject with a reason). Refreshes live on session_request.updated.
 */
(function () {
  'use strict';
  const A = window.Astegni;
  const h = A.h;
  const T = window.I18n.t;
  const $ = function (id) { return document.getElementById(id); };
  const STATUSES = ['', 'pending', 'accepted', 'rejected', 'cancelled', 'expired'];

  const state = { me: null, tutorView: false, status: '', next: null, items: [], focused: false };

  function base() {
    return state.tutorView ? '/api/session-requests/tutor' : '/api/session-requests/my-requests';
  }

  function renderFilters() {
    const box = A.clear($('status-filters'));
    STATUSES.forEach(function (s) {
      A.append(
        box,
        h('button', {
          type: 'button',
          'aria-pressed': String(state.status === s),
          onclick: function () {
            state.status = s;
            renderFilters();
            load(false);
          },
        }, s ? T('status.' + s) : T('requests.all'))
      );
    });
  }

  function perHour(value) {
    return T('requests.money_per_hour', { money: A.money(value) });
  }

  /** Whether the caller sent the request (only they may cancel it); a child also sees the
   * requests a parent sent for them. */
  function sentByMe(r) {
    return (r.requester ? r.requester.user_id : r.requester_id) === state.me.id;
  }

  function item(r) {
    const schedule = A.scheduleSummary(r);
    const mine = state.tutorView || sentByMe(r);
    const facts = h('dl', { className: 'facts' });
    const rows = state.tutorView
      ? [
          [T('requests.from'), r.requester_name ? r.requester_name + (r.requester_type ? ' (' + T('role.' + r.requester_type) + ')' : '') : ''],
          [T('requests.for'), r.requester_type === 'parent' ? r.requested_to_name || '' : ''],
        ]
      : [
          [T('requests.tutor'), r.tutor_name || ''],
          [T('requests.for'), r.requester_type === 'parent' && mine ? r.requested_to_name || '' : ''],
        ];
    rows.push(
      [T('requests.schedule'), schedule],
      [T('requests.package_price'), perHour(r.package_price != null ? r.package_price : r.hourly_rate)],
      [T('requests.offer'), r.counter_offer_price != null ? perHour(r.counter_offer_price) : ''],
      [T('requests.agreed_price'), r.agreed_price != null ? perHour(r.agreed_price) : ''],
      [T('requests.sent'), A.dateTimeLabel(r.created_at)],
      [T('requests.answered'), r.responded_at ? A.dateTimeLabel(r.responded_at) : '']
    );
    rows.forEach(function (row) {
      if (row[1]) A.append(facts, h('dt', null, row[0]), h('dd', null, row[1]));
    });
    const li = h(
      'li',
      { id: 'request-' + r.id, className: 'card request-item', tabindex: '-1', dataset: { requestId: String(r.id), status: r.status } },
      h('div', { className: 'head' }, h('h3', null, r.package_name || T('requests.package_number', { id: r.package_id })), A.statusBadge(r.status)),
      mine ? null : h('p', { className: 'small muted requested-by' }, T('requests.by_parent', { name: r.requester ? r.requester.name : r.requester_name })),
      facts,
      r.message ? h('p', { className: 'quote' }, '“' + r.message + '”') : null,
      r.status === 'rejected' && r.rejected_reason ? h('p', { className: 'small reason' }, T('requests.reason', { reason: r.rejected_reason })) : null
    );
    const links = h('div', { className: 'row small' });
    if (r.conversation_id) A.append(links, h('a', { href: 'inbox.html?conversation=' + encodeURIComponent(r.conversation_id) }, T('requests.open_conversation')));
    if (!state.tutorView && r.tutor_id) A.append(links, h('a', { href: 'view-tutor.html?id=' + encodeURIComponent(r.tutor_id) }, T('requests.view_tutor')));
    if (links.childNodes.length) A.append(li, links);
    if (r.status === 'pending' && mine) {
      A.append(
        li,
        A.sessionRequests.actions({
          requestId: r.id,
          canRespond: state.tutorView,
          canCancel: !state.tutorView && mine,
          onDone: function (result) {
            Object.assign(r, result);
            const fresh = item(r);
            li.replaceWith(fresh);
            A.toast(T('requests.done_toast', { status: T('status.' + result.status) }), 'ok');
          },
        })
      );
    }
    return li;
  }

  function render() {
    const list = A.clear($('request-list'));
    state.items.forEach(function (r) { A.append(list, item(r)); });
    const empty = $('requests-empty');
    empty.hidden = state.items.length > 0;
    const none = state.status
      ? T('requests.none_with_status', { status: T('status.' + state.status) })
      : T('requests.none');
    empty.textContent = none + ' ' + (state.tutorView ? T('requests.empty_tutor') : T('requests.empty_requester'));
    $('load-more').hidden = !state.next;
    focusTarget();
  }

  /** requests.html#request-123 (the tutor page's "View request") brings that request into view. */
  function focusTarget() {
    const match = /^#request-(\d+)$/.exec(location.hash);
    const target = match && document.getElementById('request-' + match[1]);
    if (!target || state.focused) return;
    state.focused = true;
    target.classList.add('focused');
    target.scrollIntoView({ block: 'center' });
    target.focus({ preventScroll: true });
  }

  async function load(more) {
    $('requests-error').hidden = true;
    const path = more && state.next ? state.next : base() + '?limit=20' + (state.status ? '&status=' + encodeURIComponent(state.status) : '');
    try {
      const result = await A.request('GET', path);
      const list = Array.isArray(result.data) ? result.data : result.data.requests || [];
      state.items = more ? state.items.concat(list) : list;
      state.next = A.nextLink(result.response);
      render();
    } catch (error) {
      if (error.status === 401) return;
      const box = $('requests-error');
      box.textContent = T('requests.load_failed', { error: error.message });
      box.hidden = false;
    }
  }

  let reloadTimer = null;
  function reloadSoon() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(function () { load(false); }, 200);
  }

  async function start() {
    A.renderHeader('requests.html');
    try {
      state.me = await A.requireLogin();
    } catch (error) {
      return;
    }
    A.renderHeader('requests.html');
    state.tutorView = state.me.active_role === 'tutor';
    $('requests-title').textContent = state.tutorView ? T('requests.incoming') : T('requests.mine');
    $('requests-intro').textContent = state.tutorView
      ? T('requests.intro_tutor')
      : T('requests.intro_requester');
    const wanted = A.param('status');
    if (STATUSES.indexOf(wanted) > 0) state.status = wanted;
    renderFilters();
    $('load-more').addEventListener('click', function () { load(true); });
    await load(false);
    A.live = A.connectLive({
      onEvent: function (type, data) {
        const m = data.message || data;
        if (type === 'session_request.updated') reloadSoon();
        else if (type === 'message.created' && m.message_type === 'session_request') reloadSoon();
      },
      onOpen: function (isReconnect) {
        if (isReconnect) reloadSoon();
      },
    });
  }

  window.I18n.ready.then(start);
})();
