/* The post page: sign-in, and the form that moves a road to its next status through the API.
 *
 * Signing in calls POST /api/auth/login; the bearer token is kept in sessionStorage (gone
 * when the tab closes) and sent as Authorization on every write. The form follows the same
 * rules as any API client: the road's version goes in If-Match (a road changed by someone
 * else since it was read is refused, 412), and every submission carries an Idempotency-Key,
 * kept when the network fails so that pressing "send" again cannot record the step twice.
 * Photos and GPX tracks are uploaded first (POST /api/attachments, owner: the road) and
 * referenced in the transition's evidence; a GPX sent with "completed" becomes the
 * as-built line (POST /api/roads/{id}/as-built-from-gpx). The API's own error message is
 * shown to the user.
 */
(function () {
  'use strict';

  var F = BR.fmt;
  var SESSION_KEY = 'br.session';
  var cfg, roads = {}, state = null, session = null;
  var el = {};

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // crypto.randomUUID needs a secure context; a phone on http://<lan address> has none.
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  function say(box, kind, text) {
    if (!box) return;
    box.className = 'message ' + kind;
    box.textContent = text;
  }

  // Every API error is {code, message, detail?}: `message` is the one line to show.
  function reason(body, status) {
    if (body && typeof body.message === 'string') return body.message;
    return String(status);
  }

  function ApiError(status, body) { this.status = status; this.body = body; }

  function call(method, url, opts) {
    opts = opts || {};
    var headers = opts.headers || {};
    if (session && session.token) headers.Authorization = 'Bearer ' + session.token;
    var init = { method: method, headers: headers, credentials: 'same-origin' };
    if (opts.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.json);
    } else if (opts.form) {
      init.body = opts.form;
    }
    return fetch(url, init).then(function (r) {
      var etag = r.headers.get('ETag');
      return r.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = { message: text }; }
        if (!r.ok) throw new ApiError(r.status, body);
        return { body: body, etag: etag, status: r.status };
      });
    });
  }

  function withLang(url) {
    var lang = document.documentElement.lang;
    return lang && lang !== 'vi' ? url + (url.indexOf('?') >= 0 ? '&' : '?') + 'lang=' + lang : url;
  }

  // ------------------------------------------------------------------------ session

  function loadSession() {
    try { session = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null'); } catch (e) { session = null; }
    if (session && session.expires_at && Date.parse(session.expires_at) < Date.now()) session = null;
  }

  function saveSession(s) {
    session = s;
    try {
      if (s) sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
      else sessionStorage.removeItem(SESSION_KEY);
    } catch (e) { /* private mode: the session lasts as long as the page */ }
  }

  function ownPostElsewhere() {
    return session && session.account.role === 'post' && cfg.post_id && session.account.post_id !== cfg.post_id;
  }

  function showSession() {
    var signed = !!session;
    el.signIn.classList.toggle('hidden', signed);
    el.signedIn.classList.toggle('hidden', !signed);
    if (signed) el.accountName.textContent = session.account.display_name + ' (' + session.account.username + ')';
    var elsewhere = ownPostElsewhere();
    el.otherPost.classList.toggle('hidden', !elsewhere);
    if (elsewhere) el.ownPostLink.href = withLang('/post?post_id=' + session.account.post_id);
    if (el.form) {
      el.form.classList.toggle('br-locked', !signed || elsewhere);
      var road = currentRoad();
      if (road) fillNext(road);
    }
  }

  function signIn(ev) {
    ev.preventDefault();
    var username = el.username.value.trim(), password = el.password.value;
    if (!username || !password) return;
    el.signInButton.disabled = true;
    say(el.signInMessage, 'busy', F.word('signing_in'));
    session = null;
    call('POST', '/api/auth/login', { json: { username: username, password: password } }).then(function (res) {
      saveSession({ token: res.body.access_token, expires_at: res.body.expires_at, account: res.body.account });
      el.password.value = '';
      say(el.signInMessage, '', '');
      var own = res.body.account.post_id;
      if (!cfg.post_id && own) { window.location.href = withLang('/post?post_id=' + own); return; }
      showSession();
    }).catch(function (err) {
      say(el.signInMessage, 'error', err instanceof ApiError ? reason(err.body, err.status) : F.word('network_error'));
    }).then(function () { el.signInButton.disabled = false; });
  }

  function signOut() {
    var done = function () { saveSession(null); showSession(); };
    call('POST', '/api/auth/logout').then(done, done);
  }

  // ----------------------------------------------------------------------- the form

  function versionOf(feature, etag) {
    if (feature && feature.properties && feature.properties.version !== undefined) return feature.properties.version;
    var m = etag && etag.match(/(\d+)/);
    return m ? Number(m[1]) : null;
  }

  function nextStatuses(road) {
    var next = road.status === 'suspended' && road.suspended_from ? [road.suspended_from, 'cancelled']
      : (cfg.transitions[road.status] || []);
    next = next.filter(function (s) { return s !== 'inaugurated'; });
    if (session && session.account.role === 'post') {  // field steps only; the rest is a planner's
      next = next.filter(function (s) { return cfg.post_transitions.indexOf(s) >= 0; });
    }
    return next;
  }

  function fillNext(road) {
    var next = nextStatuses(road);
    var shown = Array.prototype.map.call(el.toStatus.options, function (o) { return o.value; });
    if (shown.join() !== next.join()) {
      var keep = el.toStatus.value;
      el.toStatus.innerHTML = '';
      next.forEach(function (s) {
        var o = document.createElement('option');
        o.value = s;
        o.textContent = F.word('status_' + s);
        el.toStatus.appendChild(o);
      });
      if (next.indexOf(keep) >= 0) el.toStatus.value = keep;
    }
    el.noNext.classList.toggle('hidden', next.length > 0);
    el.noNext.textContent = road.status === 'completed' ? F.word('inaugurated_via') : F.word('no_next_status');
    el.submit.disabled = !next.length || ownPostElsewhere();
    el.current.innerHTML = F.statusBadge(road.status) + ' ' + F.esc(F.word('progress')) + ': ' +
      F.num(road.progress) + '% · v' + F.esc(road.version);
    toggleCompleted();
  }

  function toggleCompleted() {
    el.completed.classList.toggle('hidden', el.toStatus.value !== 'completed');
  }

  function currentRoad() { return el.road ? roads[Number(el.road.value)] : null; }

  // Re-read the road: its status and version may have moved since the page was made.
  function refresh(id) {
    return call('GET', '/api/roads/' + id).then(function (res) {
      var p = res.body.properties;
      var road = roads[id];
      if (p.status === 'suspended' && road.status !== 'suspended') road.suspended_from = road.status;
      road.status = p.status;
      road.version = versionOf(res.body, res.etag);
      road.progress = p.progress_pct;
      fillNext(road);
      updateRow(id);
    }).catch(function () { /* offline: keep what the page had */ }).then(function () {
      el.current.setAttribute('data-fresh', String(id));
    });
  }

  function selectRoad(id, scroll) {
    el.road.value = String(id);
    el.current.removeAttribute('data-fresh');
    state = null;
    fillNext(roads[id]);
    refresh(id);
    if (scroll) el.form.scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  function updateRow(id) {
    var road = roads[id];
    var li = document.querySelector('#road-list li[data-road-id="' + id + '"]');
    if (li) {
      li.querySelector('.road-status').innerHTML = F.statusBadge(road.status) +
        ' <span class="br-muted road-progress">' + F.num(road.progress) + '%</span>';
    }
    var layer = BR.index.roads && BR.index.roads[id];
    if (layer) {
      layer.feature.properties.status = road.status;
      layer.feature.properties.version = road.version;
      layer.feature.properties.progress = road.progress;
      layer.setStyle(BR.style.road(layer.feature));
    }
  }

  function upload(road, file, key) {
    var form = new FormData();
    form.append('owner_kind', 'road');
    form.append('owner_id', String(road.id));
    var note = el.note.value.trim();
    if (note) form.append('caption', note.slice(0, 2000));
    form.append('file', file, file.name);
    return call('POST', '/api/attachments', { form: form, headers: { 'Idempotency-Key': key } })
      .then(function (res) { return res.body; });
  }

  function submit(ev) {
    ev.preventDefault();
    var road = currentRoad();
    var to = el.toStatus.value;
    if (!road || !to) return;
    if (!session) {
      say(el.message, 'error', F.word('sign_in_first'));
      el.username.focus();
      return;
    }
    // One key per submission; kept (with what was already uploaded) for a retry after a network error.
    if (!state || state.roadId !== road.id || state.to !== to) {
      state = { roadId: road.id, to: to, key: uuid(), photo: null, gpx: null, asBuilt: null };
    }
    var photoFile = el.photo.files[0], gpxFile = el.gpx.files[0];
    el.submit.disabled = true;
    say(el.message, 'busy', (photoFile || gpxFile) ? F.word('uploading') : F.word('sending'));
    var steps = Promise.resolve();
    if (photoFile && !state.photo) {
      steps = steps.then(function () { return upload(road, photoFile, state.key + ':photo'); })
        .then(function (a) { state.photo = a; });
    }
    if (gpxFile && !state.gpx) {
      steps = steps.then(function () { return upload(road, gpxFile, state.key + ':gpx'); })
        .then(function (a) { state.gpx = a; });
    }
    if (to === 'completed') {
      steps = steps.then(function () {
        if (!state.gpx || state.asBuilt) return null;
        return call('POST', '/api/roads/' + road.id + '/as-built-from-gpx', {
          json: { attachment_id: state.gpx.id },
          headers: { 'If-Match': '"' + road.version + '"', 'Idempotency-Key': state.key + ':as-built' }
        }).then(function (res) {
          state.asBuilt = res.body.geometry;
          road.version = versionOf(res.body, res.etag);
        });
      });
    }
    steps.then(function () {
      say(el.message, 'busy', F.word('sending'));
      var evidence = {};
      if (state.photo) evidence.photos = [state.photo.content_url];
      if (state.gpx) evidence.gpx_tracks = [state.gpx.content_url];
      if (to === 'completed') {
        if (el.completedOn.value) evidence.completed_on = el.completedOn.value;
        if (state.asBuilt) evidence.as_built_line = state.asBuilt;
      }
      var body = { to_status: to, evidence: evidence };
      var note = el.note.value.trim();
      if (note) body.note = note;
      return call('POST', '/api/roads/' + road.id + '/transitions', {
        json: body,
        headers: { 'If-Match': '"' + road.version + '"', 'Idempotency-Key': state.key }
      });
    }).then(function (res) {
      var p = res.body.properties;
      if (p.status === 'suspended') road.suspended_from = road.status;
      road.status = p.status;
      road.version = versionOf(res.body, res.etag);
      road.progress = p.progress_pct;
      state = null;
      el.note.value = '';
      el.photo.value = '';
      el.gpx.value = '';
      updateRow(road.id);
      fillNext(road);
      say(el.message, 'ok', F.word('saved').replace('{code}', road.code).replace('{status}', F.word('status_' + road.status)));
    }).catch(function (err) {
      el.submit.disabled = false;
      if (!(err instanceof ApiError)) { say(el.message, 'error', F.word('network_error')); return; }
      if (err.status < 500) state = null;  // a refused request may be corrected and sent anew
      var text = reason(err.body, err.status);
      if (err.status === 401) { saveSession(null); showSession(); text = F.word('session_expired'); }
      if (err.status === 412) text = F.word('stale') + ' (' + text + ')';
      if (err.status === 409 || err.status === 412) refresh(road.id);
      say(el.message, 'error', F.word('error') + ': ' + text);
    });
  }

  function init(config) {
    cfg = config;
    cfg.roads.forEach(function (r) { roads[r.id] = r; });
    ['form:status-form', 'road:road-select', 'toStatus:to-status', 'note:note', 'photo:photo', 'gpx:gpx',
      'submit:submit-status', 'message:form-message', 'noNext:no-next', 'current:road-current',
      'completed:completed-fields', 'completedOn:completed-on', 'signIn:sign-in', 'signedIn:signed-in',
      'accountName:account-name', 'signOut:sign-out', 'otherPost:other-post', 'ownPostLink:own-post-link',
      'username:username', 'password:password', 'signInButton:sign-in-button',
      'signInMessage:sign-in-message'].forEach(function (pair) {
      var kv = pair.split(':');
      el[kv[0]] = document.getElementById(kv[1]);
    });
    loadSession();
    el.signIn.addEventListener('submit', signIn);
    el.signOut.addEventListener('click', signOut);
    if (el.form) {
      el.road.addEventListener('change', function () { selectRoad(Number(el.road.value), false); });
      el.toStatus.addEventListener('change', function () { state = null; toggleCompleted(); });
      el.form.addEventListener('submit', submit);
      document.querySelectorAll('#road-list [data-update-road]').forEach(function (b) {
        b.addEventListener('click', function () {
          var id = Number(b.getAttribute('data-update-road'));
          selectRoad(id, true);
          BR.focus('roads', id);
        });
      });
      BR.onUpdateRoad = function (id) { BR.map.closePopup(); selectRoad(id, true); };
    }
    showSession();
    if (session && !cfg.post_id && session.account.post_id) {
      window.location.replace(withLang('/post?post_id=' + session.account.post_id));
    }
  }

  window.BRPost = { init: init, uuid: uuid };
}());
