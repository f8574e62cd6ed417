/* The landing page: a personal greeting and shortcuts for a logged-in user. */
(function () {
  'use strict';
  const A = window.Astegni;
  const h = A.h;
  const T = window.I18n.t;
  const $ = function (id) { return document.getElementById(id); };

  async function start() {
    A.renderHeader('index.html');
    if (!A.token()) return;
    let me;
    try {
      me = await A.get('/api/me');
    } catch (error) {
      return; // the API wrapper sends an expired session to the login page
    }
    localStorage.setItem('user', JSON.stringify(me));
    A.renderHeader('index.html');
    $('hero-title').textContent = T('home.welcome', { name: me.first_name });
    const actions = A.clear($('hero-actions'));
    if (me.active_role === 'tutor') {
      $('hero-text').textContent = T('home.tutor_text');
      A.append(actions, h('a', { className: 'btn btn-primary', href: 'requests.html' }, T('requests.incoming')));
      if (me.role_ids && me.role_ids.tutor) {
        A.append(actions, h('a', { className: 'btn btn-secondary', href: 'view-tutor.html?id=' + me.role_ids.tutor }, T('home.public_profile')));
      }
    } else {
      A.append(actions, h('a', { className: 'btn btn-primary', href: 'requests.html' }, T('requests.mine')));
      A.append(actions, h('a', { className: 'btn btn-secondary', href: 'inbox.html' }, T('nav.inbox')));
      try {
        const requests = await A.get('/api/session-requests/my-requests?limit=50');
        const seen = new Map();
        (requests || []).forEach(function (r) {
          if (r.tutor_id && !seen.has(r.tutor_id)) seen.set(r.tutor_id, r.tutor_name || T('tutor.number', { id: r.tutor_id }));
        });
        if (seen.size) {
          const list = A.clear($('recent-list'));
          seen.forEach(function (name, id) {
            A.append(list, h('li', null, h('a', { className: 'btn btn-secondary btn-sm', href: 'view-tutor.html?id=' + encodeURIComponent(id) }, name)));
          });
          $('recent-tutors').hidden = false;
        }
      } catch (error) {
        /* the shortcuts are optional */
      }
    }
  }

  window.I18n.ready.then(start);
})();
