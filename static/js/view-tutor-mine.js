/*
 * view-tutor.html: what the caller already asked this tutor for. One call of my-requests with the
 * tutor's id gives the requests the caller sent and those sent for them as the learner; the page
 * shows a package's open request (pending, or accepted) in place of the request action, so that
 * nobody fills the form only to be told it was sent already. Exposed as Astegni.tutorRequests.
 */
(function () {
  'use strict';
  const A = window.Astegni;
  const h = A.h;
  const T = window.I18n.t;
  const OPEN = ['pending', 'accepted'];

  let me = null;
  let open = [];

  /** The caller's open requests to this tutor (one page of 100 holds them: at most one pending
   * per learner and package). Failures leave the page as it was without them. */
  async function load(user, tutorId) {
    me = user;
    open = [];
    if (!user || (user.active_role !== 'student' && user.active_role !== 'parent')) return;
    try {
      const rows = await A.get('/api/session-requests/my-requests?limit=100&tutor_id=' + encodeURIComponent(tutorId));
      open = (rows || []).filter(function (r) { return OPEN.indexOf(r.status) !== -1; });
    } catch (error) {
      if (error.status !== 401) A.toast(T('tutor.requests_failed', { error: error.message }), 'error');
    }
  }

  function learnerId(r) {
    return r.learner ? r.learner.student_id : r.requested_to_id;
  }

  function requesterId(r) {
    return r.requester ? r.requester.user_id : r.requester_id;
  }

  /** The newest open request for the package whose learner is the caller (a student's card). */
  function forMe(packageId) {
    const studentId = me && me.role_ids && me.role_ids.student;
    return open.find(function (r) {
      return r.package_id === packageId && studentId != null && learnerId(r) === studentId;
    }) || null;
  }

  /** The pending request for the package and child that the parent could not send again. */
  function forChild(packageId, childId) {
    return open.find(function (r) {
      return r.package_id === packageId && r.status === 'pending' && learnerId(r) === childId;
    }) || null;
  }

  function viewHref(r) {
    return 'requests.html#request-' + encodeURIComponent(r.id);
  }

  /** The request's summary (status, when it was sent, its price) with View and, for its
   * requester while it is pending, Cancel. onCancelled runs once the server cancelled it. */
  function panel(r, onCancelled) {
    const facts = h(
      'dl',
      { className: 'facts' },
      h('dt', null, T('tutor.request_status')), h('dd', null, A.statusBadge(r.status)),
      h('dt', null, T('tutor.request_sent')), h('dd', null, A.dateLabel(r.created_at)),
      h('dt', null, T('tutor.price')), h('dd', null, T('tutor.money_per_hour', { money: A.money(r.package_price) }))
    );
    if (requesterId(r) !== me.id && r.requester) {
      A.append(facts, h('dt', null, T('tutor.requested_by')), h('dd', null, r.requester.name));
    }
    const actions = h(
      'div',
      { className: 'request-actions' },
      h('a', { className: 'btn btn-secondary btn-sm', href: viewHref(r) }, T('tutor.view_request'))
    );
    const errorBox = h('div', { className: 'form-error', role: 'alert', hidden: true });
    if (r.status === 'pending' && requesterId(r) === me.id) {
      const cancel = h('button', { type: 'button', className: 'btn btn-danger btn-sm' }, T('actions.cancel_request'));
      cancel.addEventListener('click', async function () {
        if (!confirm(T('actions.confirm_cancel'))) return;
        cancel.disabled = true;
        errorBox.hidden = true;
        try {
          await A.sessionRequests.cancel(r.id);
          open = open.filter(function (x) { return x.id !== r.id; });
          A.toast(T('tutor.request_cancelled'), 'ok');
          onCancelled();
        } catch (error) {
          if (error.status === 401) return;
          errorBox.textContent = T('actions.update_failed', { error: error.message });
          errorBox.hidden = false;
          cancel.disabled = false;
        }
      });
      A.append(actions, cancel);
    }
    return h(
      'div',
      { className: 'my-request', dataset: { requestId: String(r.id), status: r.status } },
      h('h4', null, T('tutor.your_request')),
      facts,
      actions,
      errorBox
    );
  }

  A.tutorRequests = { load: load, forMe: forMe, forChild: forChild, panel: panel, viewHref: viewHref };
})();
