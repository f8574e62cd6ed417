/*
 * Astegni page helpers: the API fetch wrapper (bearer token from localStorage.token, one refresh
 * attempt on 401, then the login page), safe DOM building (text only, never innerHTML with data),
 * formatting, the shared header and toasts. Exposed as window.Astegni.
 */
(function () {
  'use strict';

  const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
  const I18n = window.I18n;
  const T = I18n.t;

  // ---------------------------------------------------------------- session storage
  function token() {
    return localStorage.getItem('token');
  }

  function currentUser() {
    try {
      return JSON.parse(localStorage.getItem('user') || 'null');
    } catch (e) {
      return null;
    }
  }

  function saveLogin(body) {
    localStorage.setItem('token', body.access_token);
    if (body.refresh_token) localStorage.setItem('refresh_token', body.refresh_token);
    if (body.user) localStorage.setItem('user', JSON.stringify(body.user));
  }

  function saveRoleSwitch(body) {
    localStorage.setItem('token', body.access_token);
    if (body.refresh_token) localStorage.setItem('refresh_token', body.refresh_token);
    const user = currentUser();
    if (user) {
      user.active_role = body.active_role;
      if (body.user_roles) user.roles = body.user_roles;
      localStorage.setItem('user', JSON.stringify(user));
    }
  }

  function clearSession() {
    localStorage.removeItem('token');
    localStorage.removeItem('refresh_token');
    localStorage.removeItem('user');
  }

  function loginUrl() {
    const here = location.pathname.replace(/^\//, '') + location.search;
    return 'login.html?next=' + encodeURIComponent(here || 'index.html');
  }

  function goLogin() {
    clearSession();
    location.href = loginUrl();
  }

  /** Revoke this login on the server too (its refresh token stops working), then leave. */
  function logout() {
    const refreshToken = localStorage.getItem('refresh_token');
    clearSession();
    const revoked = refreshToken
      ? fetch('/api/logout', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ refresh_token: refreshToken }),
          keepalive: true,
        }).catch(function () {})
      : Promise.resolve();
    revoked.finally(function () {
      location.href = 'login.html';
    });
  }

  // ---------------------------------------------------------------- fetch wrapper
  class ApiError extends Error {
    constructor(status, detail, body) {
      super(I18n.errorText(body && body.code, errorMessage(detail)) || T('error.http_status', { status: status }));
      this.name = 'ApiError';
      this.status = status;
      this.detail = detail;
      this.body = body;
      this.code = body && body.code;
    }
  }

  /** A readable sentence from an error `detail`: a string, or FastAPI's list of {loc, msg}. */
  function errorMessage(detail) {
    if (detail == null) return '';
    if (typeof detail === 'string') return detail;
    if (Array.isArray(detail)) {
      return detail
        .map(function (item) {
          if (!item || typeof item !== 'object') return String(item);
          const loc = (item.loc || []).filter(function (part) {
            return part !== 'body' && part !== 'query' && part !== 'path';
          });
          const where = loc.length ? loc.join('.').replace(/\.(\d+)/g, '[$1]') + ': ' : '';
          return where + (item.msg || JSON.stringify(item));
        })
        .join('\n');
    }
    if (typeof detail === 'object' && detail.msg) return detail.msg;
    return JSON.stringify(detail);
  }

  let refreshing = null;

  /**
   * Exchange the stored refresh token for new tokens; resolves true on success. Each refresh
   * token works once (presenting it twice logs the user out everywhere), so tabs take turns
   * under a lock, and a tab that finds the token already replaced by another tab uses that.
   */
  function refreshTokens() {
    const before = localStorage.getItem('refresh_token');
    if (!before) return Promise.resolve(false);
    if (!refreshing) {
      const exchange = function () {
        const current = localStorage.getItem('refresh_token');
        if (!current) return false;
        if (current !== before) return true; // another tab refreshed meanwhile
        return fetch('/api/refresh', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ refresh_token: current }),
        }).then(function (response) {
          if (!response.ok) return false;
          return response.json().then(function (body) {
            saveLogin(body);
            return true;
          });
        });
      };
      const turn = navigator.locks ? navigator.locks.request('astegni-refresh', exchange) : Promise.resolve().then(exchange);
      refreshing = turn
        .catch(function () {
          return false;
        })
        .finally(function () {
          refreshing = null;
        });
    }
    return refreshing;
  }

  /**
   * fetch() with the bearer token and JSON headers. A 401 tries one token refresh and retries;
   * if that fails the user is sent to the login page. Resolves to the Response otherwise.
   * options.auth === false: a public endpoint, asked without the token.
   */
  async function apiFetch(path, options) {
    options = Object.assign({}, options || {});
    const headers = new Headers(options.headers || {});
    if (options.body != null && !headers.has('Content-Type')) headers.set('Content-Type', 'application/json');
    headers.set('Accept', 'application/json');
    const send = function () {
      const t = options.auth === false ? null : token();
      if (t) headers.set('Authorization', 'Bearer ' + t);
      return fetch(path, Object.assign({}, options, { headers: headers }));
    };
    let response = await send();
    if (response.status === 401 && options.auth !== false) {
      if (await refreshTokens()) response = await send();
      if (response.status === 401) {
        goLogin();
        throw new ApiError(401, T('error.session_ended'));
      }
    }
    return response;
  }

  async function readJson(response) {
    const text = await response.text();
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch (e) {
      return { detail: text };
    }
  }

  /** JSON request; resolves to {data, response}; throws ApiError for a non-2xx answer. */
  async function request(method, path, body, options) {
    const response = await apiFetch(path, Object.assign({
      method: method,
      body: body === undefined ? undefined : JSON.stringify(body),
    }, options));
    const data = await readJson(response);
    if (!response.ok) throw new ApiError(response.status, data && data.detail, data);
    return { data: data, response: response };
  }

  async function get(path) {
    return (await request('GET', path)).data;
  }

  /** GET of a public endpoint (a tutor's profile and packages): no token, no login needed. */
  async function publicGet(path) {
    return (await request('GET', path, undefined, { auth: false })).data;
  }

  /** The URL of Link: <...>; rel="next", if any. */
  function nextLink(response) {
    const link = response.headers.get('Link') || '';
    const match = link.match(/<([^>]+)>\s*;\s*rel="?next"?/);
    if (!match) return null;
    try {
      const url = new URL(match[1], location.origin);
      return url.pathname + url.search;
    } catch (e) {
      return null;
    }
  }

  // ---------------------------------------------------------------- DOM building
  /**
   * h('div', {className: 'x', onclick: fn, 'aria-label': 'y'}, 'text', child, ...)
   * Strings become text nodes, so user content is never parsed as HTML.
   */
  function h(tag, attrs) {
    const el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        const value = attrs[key];
        if (value == null || value === false) return;
        if (key === 'className') el.className = value;
        else if (key === 'dataset') Object.assign(el.dataset, value);
        else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
        else if (key === 'text') el.textContent = value;
        else if (key in el && typeof value !== 'string') el[key] = value;
        else el.setAttribute(key, value === true ? '' : String(value));
      });
    }
    for (let i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  /** append(parent, child, ...): nodes as they are, strings as text, arrays flattened. */
  function append(parent) {
    for (let i = 1; i < arguments.length; i++) {
      const child = arguments[i];
      if (child == null || child === false) continue;
      if (Array.isArray(child)) child.forEach(function (c) { append(parent, c); });
      else if (child instanceof Node) parent.appendChild(child);
      else parent.appendChild(document.createTextNode(String(child)));
    }
    return parent;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  function initials(name) {
    return (name || '?')
      .split(/\s+/)
      .filter(Boolean)
      .slice(0, 2)
      .map(function (part) { return part[0].toUpperCase(); })
      .join('') || '?';
  }

  // ---------------------------------------------------------------- formatting
  const moneyFormat = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

  function money(value) {
    if (value == null || value === '') return '';
    const n = Number(value);
    return 'ETB ' + (isNaN(n) ? String(value) : moneyFormat.format(n));
  }

  function hhmm(value) {
    return value ? String(value).slice(0, 5) : '';
  }

  function parseDate(value) {
    if (!value) return null;
    // A bare ISO date is a calendar day, not midnight UTC.
    if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
      const parts = value.split('-').map(Number);
      return new Date(parts[0], parts[1] - 1, parts[2]);
    }
    const d = new Date(value);
    return isNaN(d) ? null : d;
  }

  /** An Amharic reader sees the Ethiopian date first, then the Gregorian one. */
  function withEthiopian(d, text) {
    return I18n.lang === 'am' ? I18n.formatDate(d) + ' (' + text + ')' : text;
  }

  function dateLabel(value) {
    const d = parseDate(value);
    return d ? withEthiopian(d, d.toLocaleDateString('en-US', { month: 'short', day: 'numeric', year: 'numeric' })) : '';
  }

  function shortDate(value) {
    const d = parseDate(value);
    return d ? withEthiopian(d, d.toLocaleDateString('en-US', { weekday: 'short', month: 'short', day: 'numeric' })) : String(value);
  }

  function timeLabel(value) {
    const d = parseDate(value);
    if (!d) return '';
    const now = new Date();
    if (d.toDateString() === now.toDateString()) {
      return d.toLocaleTimeString('en-US', { hour: 'numeric', minute: '2-digit' });
    }
    return withEthiopian(d, d.toLocaleDateString('en-US', { month: 'short', day: 'numeric' }));
  }

  function dateTimeLabel(value) {
    const d = parseDate(value);
    return d ? withEthiopian(d, d.toLocaleString('en-US', { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' })) : '';
  }

  /** "Mon, Wed · 14:00–16:00" or "Feb 3, Feb 10 · 14:00–16:00" from a request or package. */
  function scheduleSummary(s) {
    if (!s) return '';
    const days = s.days || s.schedule_days || [];
    const dates = s.specific_dates || [];
    let when;
    if (s.schedule_type === 'specific_dates' && dates.length) when = dates.map(shortDate).join(', ');
    else if (days.length) {
      when = days
        .slice()
        .sort(function (a, b) { return WEEKDAYS.indexOf(a) - WEEKDAYS.indexOf(b); })
        .map(function (d) { return T('day.short.' + d); })
        .join(', ');
    } else if (s.schedule_type === 'flexible') when = T('schedule.flexible');
    else when = '';
    const times = s.start_time && s.end_time ? hhmm(s.start_time) + '–' + hhmm(s.end_time) : '';
    return [when, times].filter(Boolean).join(' · ') || T('schedule.to_be_agreed');
  }

  function label(value) {
    return String(value || '').replace(/_/g, ' ');
  }

  function statusBadge(status) {
    return h('span', { className: 'badge badge-' + (status || 'unknown'), dataset: { status: status || '' } }, status ? T('status.' + status) : '');
  }

  // ---------------------------------------------------------------- toasts
  function toast(message, kind) {
    let region = document.getElementById('toast-region');
    if (!region) {
      region = h('div', { id: 'toast-region', className: 'toast-region', role: 'status', 'aria-live': 'polite' });
      document.body.appendChild(region);
    }
    const item = h('div', { className: 'toast' + (kind ? ' toast-' + kind : '') }, message);
    region.appendChild(item);
    setTimeout(function () { item.remove(); }, 5000);
  }

  // ---------------------------------------------------------------- header
  const PAGES = [
    { href: 'index.html', text: 'nav.home' },
    { href: 'inbox.html', text: 'nav.inbox' },
    { href: 'requests.html', text: 'nav.requests' },
  ];

  async function switchRole(role) {
    const result = await request('POST', '/api/switch-role', { role: role });
    saveRoleSwitch(result.data);
    return result.data;
  }

  /** Fill <header id="site-header"> with the brand, navigation and the account menu. */
  function renderHeader(current) {
    const header = document.getElementById('site-header');
    if (!header) return;
    header.className = 'site-header';
    const user = currentUser();
    const nav = h(
      'nav',
      { className: 'nav', 'aria-label': T('nav.main') },
      PAGES.map(function (page) {
        return h('a', { href: page.href, 'aria-current': page.href === current ? 'page' : null }, T(page.text));
      })
    );
    const account = h('div', { className: 'account' });
    if (user && token()) {
      append(account, h('span', { className: 'live-dot', id: 'live-status', hidden: true, 'aria-live': 'polite' }));
      append(account, h('span', { className: 'who' }, user.first_name + ' ' + user.father_name));
      if ((user.roles || []).length > 1) {
        const select = h(
          'select',
          { id: 'role-switch', 'aria-label': T('header.active_role') },
          user.roles.map(function (role) {
            return h('option', { value: role, selected: role === user.active_role }, T('header.as_role', { role: T('role.' + role) }));
          })
        );
        select.addEventListener('change', async function () {
          select.disabled = true;
          try {
            await switchRole(select.value);
            location.reload();
          } catch (error) {
            toast(error.message, 'error');
            select.value = user.active_role;
            select.disabled = false;
          }
        });
        append(account, select);
      } else {
        append(account, h('span', { className: 'tag' }, T('role.' + user.active_role)));
      }
      append(account, h('button', { type: 'button', className: 'btn btn-ghost btn-sm', onclick: logout }, T('header.log_out')));
    } else {
      append(account, h('a', { className: 'btn btn-primary btn-sm', href: loginUrl() }, T('header.log_in')));
    }
    append(account, I18n.switcher());
    clear(header);
    append(
      header,
      h(
        'div',
        { className: 'bar' },
        h('a', { className: 'brand', href: 'index.html' }, h('span', { className: 'brand-mark', 'aria-hidden': 'true' }, 'A'), 'Astegni'),
        nav,
        account
      )
    );
  }

  function setLiveStatus(state) {
    const dot = document.getElementById('live-status');
    document.body.dataset.live = state;
    if (!dot) return;
    dot.hidden = false;
    dot.dataset.state = state;
    dot.textContent = T(state === 'connected' ? 'live.connected' : state === 'reconnecting' ? 'live.reconnecting' : 'live.offline');
  }

  /** Pages that need a login call this first; resolves to the fresh /api/me user. */
  async function requireLogin() {
    if (!token()) {
      goLogin();
      return new Promise(function () {});
    }
    const me = await get('/api/me');
    localStorage.setItem('user', JSON.stringify(me));
    return me;
  }

  function param(name) {
    return new URLSearchParams(location.search).get(name);
  }

  window.Astegni = {
    WEEKDAYS: WEEKDAYS,
    ApiError: ApiError,
    token: token,
    currentUser: currentUser,
    saveLogin: saveLogin,
    saveRoleSwitch: saveRoleSwitch,
    switchRole: switchRole,
    refreshTokens: refreshTokens,
    logout: logout,
    goLogin: goLogin,
    fetch: apiFetch,
    readJson: readJson,
    request: request,
    get: get,
    publicGet: publicGet,
    nextLink: nextLink,
    errorMessage: errorMessage,
    h: h,
    append: append,
    clear: clear,
    initials: initials,
    money: money,
    hhmm: hhmm,
    dateLabel: dateLabel,
    shortDate: shortDate,
    timeLabel: timeLabel,
    dateTimeLabel: dateTimeLabel,
    scheduleSummary: scheduleSummary,
    label: label,
    statusBadge: statusBadge,
    toast: toast,
    renderHeader: renderHeader,
    setLiveStatus: setLiveStatus,
    requireLogin: requireLogin,
    param: param,
  };
})();
