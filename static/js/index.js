/* The landing page: a personal greeting and shortcuts for a logged-in user. */
(function () {
  'use strict';
  const A = window.Astegni;
  const h = A.h;
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
    $('hero-title').textContent = 'Welcome back, ' + me.first_name + '.';
    const actions = A.clear($('hero-actions'));
    if (me.active_role === 'tutor') {
      $('hero-text').textContent = 'Answer session requests from students and parents, and keep in touch in your inbox.';
      A.append(actions, h('a', { className: 'btn btn-primary', href: 'requests.html' }, 'Incoming requests'));
      if (me.role_ids && me.role_ids.tutor) {
        A.append(actions, h('a', { className: 'btn btn-secondary', href: 'view-tutor.html?id=' + me.role_ids.tutor }, 'My public profile'));
      }
    } else {
      A.append(actions, h('a', { className: 'btn btn-primary', href: 'requests.html' }, 'My requests'));
      A.append(actions, h('a', { className: 'btn btn-secondary', href: 'inbox.html' }, 'Inbox'));
      try {
        const requests = await A.get('/api/session-requests/my-requests?limit=50');
        const seen = new Map();
        (requests || []).forEach(function (r) {
          if (r.tutor_id && !seen.has(r.tutor_id)) seen.set(r.tutor_id, r.tutor_name || 'Tutor #' + r.tutor_id);
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

  start();
})();
