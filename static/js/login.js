/* Login, then (for users with several roles) the choice of the active role. */
(function () {
  'use strict';
  const A = window.Astegni;
  const h = A.h;
  const T = window.I18n.t;

  const form = document.getElementById('login-form');
  const errorBox = document.getElementById('login-error');
  const submit = document.getElementById('login-submit');
  const roleCard = document.getElementById('role-card');
  const roleForm = document.getElementById('role-form');
  const roleOptions = document.getElementById('role-options');
  const roleError = document.getElementById('role-error');

  function nextPage() {
    const next = A.param('next');
    // Only pages of this site: no scheme, no host, no protocol-relative URL.
    if (next && /^[A-Za-z0-9_\-./]+\.html(\?[^#]*)?$/.test(next) && !next.startsWith('//')) return next;
    return 'index.html';
  }

  function showError(box, message) {
    box.textContent = message;
    box.hidden = !message;
  }

  function showRoleChoice(user) {
    A.renderHeader('');
    document.getElementById('login-card').hidden = true;
    roleCard.hidden = false;
    A.clear(roleOptions);
    user.roles.forEach(function (role) {
      roleOptions.appendChild(
        h(
          'label',
          { className: 'role-option' },
          h('input', { type: 'radio', name: 'role', value: role, checked: role === user.active_role }),
          T('role.' + role)
        )
      );
    });
    const checked = roleOptions.querySelector('input:checked') || roleOptions.querySelector('input');
    if (checked) checked.focus();
  }

  form.addEventListener('submit', async function (event) {
    event.preventDefault();
    showError(errorBox, '');
    const email = form.email.value.trim();
    const password = form.password.value;
    if (!email || !password) {
      showError(errorBox, T('login.need_both'));
      return;
    }
    submit.disabled = true;
    submit.textContent = T('login.logging_in');
    try {
      const response = await fetch('/api/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ email: email, password: password }),
      });
      const body = await A.readJson(response);
      if (!response.ok) {
        showError(errorBox, window.I18n.errorText(body && body.code, A.errorMessage(body && body.detail)) || T('error.http_status', { status: response.status }));
        return;
      }
      A.saveLogin(body);
      if ((body.user.roles || []).length > 1) showRoleChoice(body.user);
      else location.href = nextPage();
    } catch (error) {
      showError(errorBox, T('error.offline'));
    } finally {
      submit.disabled = false;
      submit.textContent = T('common.log_in');
    }
  });

  roleForm.addEventListener('submit', async function (event) {
    event.preventDefault();
    showError(roleError, '');
    const picked = roleForm.querySelector('input[name="role"]:checked');
    const user = A.currentUser();
    if (!picked || !user) return;
    try {
      if (picked.value !== user.active_role) await A.switchRole(picked.value);
      location.href = nextPage();
    } catch (error) {
      showError(roleError, error.message);
    }
  });

  window.I18n.ready.then(function () {
    A.renderHeader('');
    // Already logged in with several roles: offer the role choice straight away.
    const user = A.currentUser();
    if (A.token() && user && A.param('switch') === '1' && (user.roles || []).length > 1) showRoleChoice(user);
    else form.email.focus();
  });
})();
