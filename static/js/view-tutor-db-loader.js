/*
 * view-tutor.html?id=N — the tutor's profile and packages from the database, the package details
 * modal with its schedule form, and submitPackageRequest(), which posts /api/session-requests.
 *
 * Globals kept from the original frontend: submitPackageRequest(), closePackageDetailsModal(),
 * openPackageDetailsModal(packageId).
 */
(function () {
  'use strict';
  const A = window.Astegni;
  const h = A.h;
  const T = window.I18n.t;

  const state = {
    me: null,
    tutor: null,
    packages: [],
    children: null,
    pkg: null,
    dates: [],
    opener: null,
    busy: false,
  };

  const $ = function (id) { return document.getElementById(id); };
  const modal = $('packageDetailsModal');
  const dialog = $('package-modal-dialog');
  const form = $('package-request-form');

  // ---------------------------------------------------------------- page load
  async function loadTutor() {
    const tutorId = parseInt(A.param('id'), 10);
    A.renderHeader('');
    if (!tutorId || tutorId < 1) {
      pageError(T('tutor.none_chosen'));
      return;
    }
    try {
      // The profile and packages are public: a visitor sees them without logging in. A logged-in
      // user is loaded too, to offer the request form in their role.
      if (A.token()) {
        state.me = await A.requireLogin();
        A.renderHeader('');
      }
      const results = await Promise.all([
        A.publicGet('/api/view-tutor/' + tutorId),
        A.publicGet('/api/view-tutor/' + tutorId + '/packages'),
        A.tutorRequests.load(state.me, tutorId),
      ]);
      state.tutor = results[0];
      state.packages = (results[1] && results[1].packages) || [];
      renderProfile(state.tutor);
      renderPackages(state.packages);
    } catch (error) {
      if (error.status === 404) pageError(T('tutor.missing'));
      else if (error.status !== 401) pageError(T('tutor.load_failed', { error: error.message }));
    }
  }

  function pageError(message) {
    const box = $('page-error');
    box.textContent = message;
    box.hidden = false;
    $('tutor-profile').hidden = true;
    $('packages-title').parentElement.parentElement.hidden = true;
  }

  function tutorName(t) {
    if (!t) return T('tutor.the_tutor');
    return t.full_name || [t.first_name, t.father_name].filter(Boolean).join(' ') || T('tutor.number', { id: t.id });
  }

  function renderProfile(t) {
    const name = tutorName(t);
    document.title = name + ' · Astegni';
    $('tutor-name').textContent = name;
    $('tutor-avatar').textContent = A.initials(name);
    const meta = A.clear($('tutor-meta'));
    if (t.is_verified) A.append(meta, h('span', { className: 'verified' }, T('tutor.verified')));
    (t.subjects || []).forEach(function (s) { A.append(meta, h('span', { className: 'tag' }, s)); });
    if (t.location) A.append(meta, h('span', { className: 'tag' }, t.location));
    if ((t.languages || []).length) A.append(meta, h('span', { className: 'tag' }, T('tutor.speaks', { languages: t.languages.join(', ') })));
    $('tutor-bio').textContent = t.bio || T('tutor.no_bio');
    $('tutor-profile').removeAttribute('aria-busy');
    const role = state.me && state.me.active_role;
    $('role-hint').textContent = !state.me
      ? T('tutor.login_hint')
      : role === 'student' || role === 'parent'
        ? T('tutor.choose_package')
        : T('tutor.switch_role_hint');
  }

  function renderPackages(packages) {
    const box = A.clear($('packages'));
    const active = packages.filter(function (p) { return p.is_active !== false; });
    if (!active.length) {
      A.append(box, h('div', { className: 'card empty' }, T('tutor.no_packages')));
      return;
    }
    active.forEach(function (p) {
      const mine = state.me && state.me.active_role === 'student' ? A.tutorRequests.forMe(p.id) : null;
      if (mine) {
        A.append(box, requestedCard(p, mine));
        return;
      }
      A.append(
        box,
        h(
          'button',
          {
            type: 'button',
            className: 'card package-card',
            dataset: { packageId: p.id },
            'aria-haspopup': 'dialog',
            onclick: function (event) { openPackageDetailsModal(p.id, event.currentTarget); },
          },
          h('h3', null, p.name),
          h('div', { className: 'price' }, A.money(p.hourly_rate), ' ', h('small', null, T('tutor.per_hour'))),
          p.description ? h('p', { className: 'desc' }, p.description) : null,
          h(
            'div',
            { className: 'row small muted' },
            h('span', null, A.scheduleSummary(p)),
            p.session_format ? h('span', { className: 'tag' }, T('format.' + p.session_format)) : null
          ),
          h('span', { className: 'cta' }, T('tutor.view_details'))
        )
      );
    });
  }

  /** A package the caller already asked for: the card shows that request instead of the form. */
  function requestedCard(p, request) {
    return h(
      'div',
      { className: 'card package-card requested', dataset: { packageId: p.id } },
      h('h3', null, p.name),
      h('div', { className: 'price' }, A.money(p.hourly_rate), ' ', h('small', null, T('tutor.per_hour'))),
      p.description ? h('p', { className: 'desc' }, p.description) : null,
      A.tutorRequests.panel(request, function () {
        $('existing-request').hidden = true;
        renderPackages(state.packages);
        const card = document.querySelector('.package-card[data-package-id="' + p.id + '"]');
        if (card) card.focus();
      })
    );
  }

  /** After a 409 the request that already exists is offered: its card (a student's) shows it,
   * and a notice links to it. */
  async function offerExisting(existingId) {
    await A.tutorRequests.load(state.me, state.tutor.id);
    renderPackages(state.packages);
    if (!existingId) return;
    const notice = A.clear($('existing-request'));
    A.append(
      notice,
      T('tutor.existing_request'),
      ' ',
      h('a', { href: A.tutorRequests.viewHref({ id: existingId }) }, T('tutor.view_request'))
    );
    notice.hidden = false;
  }

  // ---------------------------------------------------------------- modal
  function focusables() {
    return Array.prototype.filter.call(
      dialog.querySelectorAll('a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])'),
      function (el) { return !el.disabled && el.offsetParent !== null && el.tabIndex >= 0; }
    );
  }

  function onModalKeydown(event) {
    if (event.key === 'Escape') {
      event.preventDefault();
      closePackageDetailsModal();
      return;
    }
    if (event.key !== 'Tab') return;
    const items = focusables();
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (event.shiftKey && (document.activeElement === first || !dialog.contains(document.activeElement))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !dialog.contains(document.activeElement))) {
      event.preventDefault();
      first.focus();
    }
  }

  function buildDayChoices() {
    const box = A.clear($('day-choices'));
    A.WEEKDAYS.forEach(function (day) {
      A.append(box, h('label', { className: 'choice' }, h('input', { type: 'checkbox', name: 'days', value: day }), T('day.' + day)));
    });
  }

  function scheduleType() {
    const checked = form.querySelector('input[name="schedule_type"]:checked');
    return checked ? checked.value : 'recurring';
  }

  function syncScheduleType() {
    const recurring = scheduleType() === 'recurring';
    $('days-fieldset').hidden = !recurring;
    $('dates-group').hidden = recurring;
  }

  function renderDates() {
    const list = A.clear($('date-chips'));
    state.dates.forEach(function (d) {
      A.append(
        list,
        h(
          'li',
          { className: 'chip' },
          A.shortDate(d),
          h('button', {
            type: 'button',
            'aria-label': T('tutor.remove_date', { date: A.dateLabel(d) }),
            onclick: function () {
              state.dates = state.dates.filter(function (x) { return x !== d; });
              renderDates();
              $('date-input').focus();
            },
          }, '×')
        )
      );
    });
  }

  function todayIso() {
    const now = new Date();
    const pad = function (n) { return String(n).padStart(2, '0'); };
    return now.getFullYear() + '-' + pad(now.getMonth() + 1) + '-' + pad(now.getDate());
  }

  function addDate() {
    const input = $('date-input');
    const value = input.value;
    if (!value) {
      formError(T('tutor.pick_date'));
      return;
    }
    if (value < todayIso()) {
      formError(T('tutor.date_past'));
      return;
    }
    formError('');
    if (state.dates.indexOf(value) === -1) state.dates.push(value);
    state.dates.sort();
    input.value = '';
    renderDates();
  }

  function formError(message) {
    const box = $('request-form-error');
    box.textContent = message;
    box.hidden = !message;
  }

  function showFormView(success) {
    $('package-form-body').hidden = success;
    $('package-form-footer').hidden = success;
    $('package-success').hidden = !success;
    $('package-success-footer').hidden = !success;
  }

  async function loadChildren() {
    if (state.children) return state.children;
    const data = await A.get('/api/parent/children');
    state.children = (data && data.children) || [];
    return state.children;
  }

  /** A parent who picks a child with a pending request for this package sees that request
   * instead of the form. */
  function syncChildRequest() {
    const box = A.clear($('child-request'));
    const childId = parseInt($('child-select').value, 10);
    const request = state.pkg && childId ? A.tutorRequests.forChild(state.pkg.id, childId) : null;
    box.hidden = !request;
    $('request-fields').hidden = !!request;
    $('submit-request').disabled = !!request;
    if (!request) return;
    const child = (state.children || []).find(function (c) { return c.id === childId; });
    A.append(
      box,
      h('p', { className: 'notice' }, T('tutor.child_has_request', { child: child ? child.name : '' })),
      A.tutorRequests.panel(request, syncChildRequest)
    );
  }

  async function prepareRequester() {
    const blocked = $('request-blocked');
    const submit = $('submit-request');
    blocked.hidden = true;
    A.clear(blocked);
    submit.disabled = false;
    $('child-field').hidden = true;
    $('child-request').hidden = true;
    $('request-fields').hidden = false;

    if (!state.me) {
      A.append(blocked, T('tutor.login_hint'), ' ');
      A.append(blocked, h('a', { href: 'login.html?next=' + encodeURIComponent('view-tutor.html' + location.search) }, T('header.log_in')));
      blocked.hidden = false;
      submit.disabled = true;
      return;
    }
    const role = state.me.active_role;

    if (state.tutor && state.me.id === state.tutor.user_id) {
      A.append(blocked, T('tutor.own_profile'));
      blocked.hidden = false;
      submit.disabled = true;
      return;
    }
    if (role !== 'student' && role !== 'parent') {
      A.append(blocked, T('tutor.role_needed'), ' ');
      const other = (state.me.roles || []).filter(function (r) { return r === 'student' || r === 'parent'; });
      other.forEach(function (r) {
        A.append(blocked, h('button', {
          type: 'button',
          className: 'link-button',
          onclick: async function () {
            try {
              await A.switchRole(r);
              state.me = await A.requireLogin();
              A.renderHeader('');
              renderProfile(state.tutor);
              await prepareRequester();
            } catch (error) {
              formError(error.message);
            }
          },
        }, T('tutor.switch_to', { role: T('role.' + r) })), ' ');
      });
      blocked.hidden = false;
      submit.disabled = true;
      return;
    }
    if (role === 'parent') {
      const field = $('child-field');
      const select = A.clear($('child-select'));
      field.hidden = false;
      try {
        const children = await loadChildren();
        if (!children.length) {
          $('child-hint').textContent = T('tutor.add_child_first');
          select.disabled = true;
          submit.disabled = true;
          return;
        }
        select.disabled = false;
        A.append(select, h('option', { value: '' }, T('tutor.choose_child')));
        children.forEach(function (c) {
          A.append(select, h('option', { value: String(c.id) }, c.name + (c.grade_level ? ' (' + c.grade_level + ')' : '')));
        });
        if (children.length === 1) select.value = String(children[0].id);
        $('child-hint').textContent = T('tutor.child_hint');
        syncChildRequest();
      } catch (error) {
        $('child-hint').textContent = T('tutor.children_failed', { error: error.message });
        submit.disabled = true;
      }
    }
  }

  function fillPackage(p) {
    $('package-modal-title').textContent = p.name;
    $('package-modal-description').textContent = p.description || '';
    $('package-modal-description').hidden = !p.description;
    const facts = A.clear($('package-facts'));
    const rows = [
      [T('tutor.price'), T('tutor.money_per_hour', { money: A.money(p.hourly_rate) })],
      [T('tutor.tutor'), tutorName(state.tutor)],
      [T('tutor.schedule'), A.scheduleSummary(p)],
      [T('tutor.format'), p.session_format ? T('format.' + p.session_format) : ''],
    ];
    rows.forEach(function (row) {
      if (!row[1]) return;
      A.append(facts, h('dt', null, row[0]), h('dd', null, row[1]));
    });
    $('counter-offer-hint').textContent =
      T('tutor.offer_hint', { money: A.money(p.hourly_rate) });

    // Prefill the form from the package's own schedule.
    form.reset();
    const recurring = p.schedule_type !== 'specific_dates';
    form.querySelector('input[name="schedule_type"][value="' + (recurring ? 'recurring' : 'specific_dates') + '"]').checked = true;
    const days = p.schedule_days || [];
    form.querySelectorAll('input[name="days"]').forEach(function (box) { box.checked = days.indexOf(box.value) !== -1; });
    $('start-time').value = A.hhmm(p.start_time);
    $('end-time').value = A.hhmm(p.end_time);
    $('date-input').min = todayIso();
    state.dates = [];
    renderDates();
    syncScheduleType();
  }

  async function openPackageDetailsModal(packageId, opener) {
    const p = state.packages.find(function (x) { return String(x.id) === String(packageId); });
    if (!p) return;
    state.pkg = p;
    state.opener = opener || document.activeElement;
    formError('');
    showFormView(false);
    fillPackage(p);
    modal.hidden = false;
    document.body.classList.add('modal-open');
    modal.addEventListener('keydown', onModalKeydown);
    dialog.focus();
    await prepareRequester();
    if (modal.hidden) return;
    const first = focusables().filter(function (el) { return el.id !== 'package-modal-close'; })[0];
    if (first) first.focus();
  }

  function closePackageDetailsModal() {
    if (modal.hidden) return;
    modal.hidden = true;
    document.body.classList.remove('modal-open');
    modal.removeEventListener('keydown', onModalKeydown);
    state.pkg = null;
    const opener = state.opener;
    state.opener = null;
    if (opener && typeof opener.focus === 'function' && document.contains(opener)) opener.focus();
  }

  // ---------------------------------------------------------------- the request
  /** The request body from the form, or throws Error with what to fix. */
  function collectRequest() {
    const p = state.pkg;
    const type = scheduleType();
    const body = {
      tutor_id: state.tutor.id,
      package_id: p.id,
      schedule_type: type,
    };
    const problems = [];
    if (state.me.active_role === 'parent') {
      const child = $('child-select').value;
      if (!child) problems.push(T('tutor.need_child'));
      else body.requested_to_id = parseInt(child, 10);
    }
    const start = $('start-time').value;
    const end = $('end-time').value;
    if (type === 'recurring') {
      body.days = Array.prototype.map.call(form.querySelectorAll('input[name="days"]:checked'), function (b) { return b.value; });
      if (!body.days.length) problems.push(T('tutor.need_day'));
      if (!start || !end) problems.push(T('tutor.need_times'));
    } else {
      body.specific_dates = state.dates.slice();
      if (!body.specific_dates.length) problems.push(T('tutor.need_date'));
      if ((start && !end) || (!start && end)) problems.push(T('tutor.both_times'));
    }
    if (start && end && start >= end) problems.push(T('tutor.time_order'));
    if (start) body.start_time = start;
    if (end) body.end_time = end;
    const message = $('request-message').value.trim();
    if (message) body.message = message;
    const offerText = $('counter-offer').value.trim();
    if (offerText) {
      const offer = Number(offerText);
      if (!(offer > 0) || offer > 1000000) problems.push(T('tutor.offer_range'));
      else body.counter_offer_price = Math.round(offer * 100) / 100;
    }
    try {
      const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (tz) body.timezone = tz;
    } catch (e) {
      /* the server's default timezone applies */
    }
    if (problems.length) throw new Error(problems.join('\n'));
    return body;
  }

  function showSuccess(result) {
    const p = state.pkg;
    $('success-text').textContent =
      T('tutor.sent_text', { package: p.name, tutor: tutorName(state.tutor) });
    const link = $('open-conversation');
    link.href = result.conversation_id ? 'inbox.html?conversation=' + encodeURIComponent(result.conversation_id) : 'inbox.html';
    showFormView(true);
    $('success-title').focus();
  }

  async function submitPackageRequest() {
    if (state.busy || !state.pkg) return;
    let payload;
    try {
      payload = collectRequest();
    } catch (problem) {
      formError(problem.message);
      return;
    }
    formError('');
    const button = $('submit-request');
    state.busy = true;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    button.textContent = T('tutor.sending');
    try {
      const response = await A.fetch('/api/session-requests', {
        method: 'POST',
        body: JSON.stringify(payload),
      });
      const error = (await A.readJson(response)) || {};
      if (response.status === 409) {
        alert(T('tutor.already_sent') + '\n\n' + window.I18n.errorText(error.code, error.detail));
        window.closePackageDetailsModal();
        await offerExisting(error.existing_request_id);
        return;
      }
      if (!response.ok) {
        throw new Error(window.I18n.errorText(error.code, A.errorMessage(error.detail)) || T('error.http_status', { status: response.status }));
      }
      showSuccess(error);
    } catch (error) {
      if (error.status === 401) return; // on its way to the login page
      const message = error.message === 'Failed to fetch' ? T('error.offline') : error.message;
      alert(T('tutor.send_failed') + '\n\n' + message);
    } finally {
      state.busy = false;
      button.disabled = false;
      button.removeAttribute('aria-busy');
      button.textContent = T('view_tutor.send_request');
    }
  }

  // ---------------------------------------------------------------- wiring
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    submitPackageRequest();
  });
  form.querySelectorAll('input[name="schedule_type"]').forEach(function (radio) {
    radio.addEventListener('change', syncScheduleType);
  });
  $('add-date').addEventListener('click', addDate);
  $('child-select').addEventListener('change', syncChildRequest);
  $('date-input').addEventListener('keydown', function (event) {
    if (event.key === 'Enter') {
      event.preventDefault();
      addDate();
    }
  });
  $('package-modal-close').addEventListener('click', closePackageDetailsModal);
  $('package-cancel').addEventListener('click', closePackageDetailsModal);
  $('success-done').addEventListener('click', closePackageDetailsModal);
  modal.addEventListener('mousedown', function (event) {
    if (event.target === modal) closePackageDetailsModal();
  });

  window.submitPackageRequest = submitPackageRequest;
  window.closePackageDetailsModal = closePackageDetailsModal;
  window.openPackageDetailsModal = openPackageDetailsModal;

  window.I18n.ready.then(function () {
    buildDayChoices();
    loadTutor();
  });
})();
