/* Sign in from a page that needs an account (the planner's): POST /api/auth/login sets the
 * page session cookie; the page is then loaded again, now for the signed-in account. */
(function () {
  'use strict';
  var form = document.getElementById('page-sign-in');
  if (!form) return;
  var message = document.getElementById('sign-in-message');
  var button = document.getElementById('sign-in-button');
  function say(kind, text) { message.className = 'message ' + kind; message.textContent = text; }
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var username = form.username.value.trim(), password = form.password.value;
    if (!username || !password) return;
    button.disabled = true;
    say('busy', BR.fmt.word('signing_in'));
    fetch('/api/auth/login', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
      body: JSON.stringify({ username: username, password: password })
    }).then(function (res) {
      if (res.ok) { window.location.reload(); return; }
      say('error', BR.fmt.word(res.status === 429 ? 'too_many_attempts' : 'wrong_credentials'));
      button.disabled = false;
    }, function () {
      say('error', BR.fmt.word('network_error'));
      button.disabled = false;
    });
  });
}());
