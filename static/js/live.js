/*
 * The live connection: /api/chat/ws, authenticated by a first frame {type: 'auth', token} (never
 * a token in the URL, which servers and proxies log), then JSON events {type, data}. Reconnects
 * with backoff; onOpen(isReconnect) runs on every (re)connection, once the server is ready, so a
 * page can catch up on what it missed (messages after its last id). When the page gets a new
 * access token it sends it too, so the socket outlives the old one; a 4401 close means the token
 * is stale: refresh it, then retry.
 */
(function () {
  'use strict';
  const A = window.Astegni;

  function connectLive(handlers) {
    let socket = null;
    let attempts = 0;
    let opened = false;
    let stopped = false;
    let timer = null;
    let sentToken = null;

    function url() {
      const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
      return scheme + '//' + location.host + '/api/chat/ws';
    }

    function sendToken() {
      sentToken = A.token() || '';
      socket.send(JSON.stringify({ type: 'auth', token: sentToken }));
    }

    // A refresh elsewhere on the page (or in another tab) stores a new access token: pass it on
    // before the one the socket was opened with expires.
    const tokenWatch = setInterval(function () {
      const open = socket && socket.readyState === WebSocket.OPEN && sentToken !== null;
      if (open && A.token() && A.token() !== sentToken) sendToken();
    }, 15000);

    function schedule() {
      if (stopped) return;
      A.setLiveStatus('reconnecting');
      const delay = Math.min(15000, 500 * Math.pow(2, attempts)) * (0.75 + Math.random() * 0.5);
      attempts += 1;
      clearTimeout(timer);
      timer = setTimeout(open, delay);
    }

    function open() {
      if (stopped) return;
      socket = new WebSocket(url());
      socket.addEventListener('open', sendToken);
      socket.addEventListener('message', function (event) {
        let payload;
        try {
          payload = JSON.parse(event.data);
        } catch (e) {
          return;
        }
        if (!payload || !payload.type) return;
        if (payload.type === 'ready') {
          const isReconnect = opened;
          opened = true;
          attempts = 0;
          A.setLiveStatus('connected');
          if (handlers.onOpen) handlers.onOpen(isReconnect);
          return;
        }
        if (payload.type === 'ping' && socket.readyState === WebSocket.OPEN) {
          socket.send(JSON.stringify({ type: 'pong' }));
          return;
        }
        if (handlers.onEvent) handlers.onEvent(payload.type, payload.data || {}, payload);
      });
      socket.addEventListener('close', async function (event) {
        socket = null;
        sentToken = null;
        if (stopped) return;
        if (event.code === 4401) {
          // The access token expired while the page was open.
          if (!(await A.refreshTokens())) {
            A.goLogin();
            return;
          }
        }
        schedule();
      });
    }

    // Reconnect at once when the network or the tab comes back.
    window.addEventListener('online', function () {
      if (!socket) {
        attempts = 0;
        clearTimeout(timer);
        open();
      }
    });

    open();
    return {
      close: function () {
        stopped = true;
        clearTimeout(timer);
        clearInterval(tokenWatch);
        if (socket) socket.close();
      },
      /** Drop the connection (as a network failure would); the client reconnects by itself. */
      drop: function () {
        if (socket) socket.close();
      },
    };
  }

  A.connectLive = connectLive;
})();
