/*
 * Session request actions shared by the inbox card and the requests page: the tutor accepts or
 * rejects (with a reason), the requester cancels. Each action's answer updates the caller's view;
 * the other side learns it live (session_request.updated / message.updated).
 */
(function () {
  'use strict';
  const A = window.Astegni;
  const h = A.h;
  const T = window.I18n.t;

  function respond(requestId, status, reason) {
    const body = { status: status };
    if (reason) body.rejected_reason = reason;
    return A.request('PATCH', '/api/session-requests/tutor/' + encodeURIComponent(requestId), body).then(function (r) { return r.data; });
  }

  function cancel(requestId) {
    return A.request('POST', '/api/session-requests/' + encodeURIComponent(requestId) + '/cancel').then(function (r) { return r.data; });
  }

  /**
   * The buttons under a pending request. options: {requestId, canRespond, canCancel, onDone(result)}.
   * onDone receives {status, rejected_reason?} after the server accepted the change.
   */
  function actions(options) {
    const bar = h('div', { className: 'request-actions' });
    const errorBox = h('div', { className: 'form-error', role: 'alert', hidden: true });

    function fail(error) {
      errorBox.textContent = error.status === 409
        ? T('actions.already_answered', { error: error.message })
        : T('actions.update_failed', { error: error.message });
      errorBox.hidden = false;
    }

    function busy(buttons, on) {
      buttons.forEach(function (b) { b.disabled = on; });
    }

    if (options.canRespond) {
      const accept = h('button', { type: 'button', className: 'btn btn-success btn-sm' }, T('actions.accept'));
      const reject = h('button', { type: 'button', className: 'btn btn-danger btn-sm' }, T('actions.reject'));
      const reasonId = 'reason-' + options.requestId + '-' + Math.random().toString(36).slice(2, 7);
      const reasonInput = h('textarea', { id: reasonId, maxlength: '500', rows: '2', placeholder: T('actions.reason_placeholder') });
      const confirmReject = h('button', { type: 'submit', className: 'btn btn-danger btn-sm' }, T('actions.reject_request'));
      const keep = h('button', { type: 'button', className: 'btn btn-secondary btn-sm' }, T('actions.back'));
      const reasonForm = h(
        'form',
        { className: 'reason-form', hidden: true },
        h('label', { for: reasonId }, T('actions.reason_label')),
        reasonInput,
        h('div', { className: 'row' }, confirmReject, keep)
      );
      accept.addEventListener('click', async function () {
        busy([accept, reject], true);
        errorBox.hidden = true;
        try {
          const result = await respond(options.requestId, 'accepted');
          options.onDone({ status: result.status || 'accepted', agreed_price: result.agreed_price });
        } catch (error) {
          fail(error);
          busy([accept, reject], false);
        }
      });
      reject.addEventListener('click', function () {
        reasonForm.hidden = false;
        accept.hidden = true;
        reject.hidden = true;
        reasonInput.focus();
      });
      keep.addEventListener('click', function () {
        reasonForm.hidden = true;
        accept.hidden = false;
        reject.hidden = false;
        reject.focus();
      });
      reasonForm.addEventListener('submit', async function (event) {
        event.preventDefault();
        const reason = reasonInput.value.trim();
        busy([confirmReject, keep], true);
        errorBox.hidden = true;
        try {
          const result = await respond(options.requestId, 'rejected', reason);
          options.onDone({ status: result.status || 'rejected', rejected_reason: reason });
        } catch (error) {
          fail(error);
          busy([confirmReject, keep], false);
        }
      });
      A.append(bar, accept, reject, reasonForm);
    }
    if (options.canCancel) {
      const cancelButton = h('button', { type: 'button', className: 'btn btn-secondary btn-sm' }, T('actions.cancel_request'));
      cancelButton.addEventListener('click', async function () {
        if (!confirm(T('actions.confirm_cancel'))) return;
        cancelButton.disabled = true;
        errorBox.hidden = true;
        try {
          const result = await cancel(options.requestId);
          options.onDone({ status: (result && result.status) || 'cancelled' });
        } catch (error) {
          fail(error);
          cancelButton.disabled = false;
        }
      });
      A.append(bar, cancelButton);
    }
    return h('div', null, bar, errorBox);
  }

  A.sessionRequests = { respond: respond, cancel: cancel, actions: actions };
})();
