// Refreshes the worklist: fetches the lists fragment every data-refresh seconds and swaps it in.
// A 401 means the session ended: go to sign-in. No other script runs on the console.
(function () {
  "use strict";
  var box = document.getElementById("lists");
  if (!box) { return; }
  var every = Math.max(5, parseInt(box.getAttribute("data-refresh"), 10) || 15) * 1000;
  var src = box.getAttribute("data-src");
  function poll() {
    fetch(src, { headers: { "X-Console-Poll": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/login?expired=1"); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null || html === undefined) { return; }
        // Keep the keyboard focus on the same link if it is still there.
        var focused = document.activeElement && box.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
        box.innerHTML = html;
        if (focused) {
          var again = box.querySelector('a[href="' + focused.replace(/"/g, "") + '"]');
          if (again) { again.focus(); }
        }
      })
      .catch(function () { /* the next poll tries again */ })
      .finally(function () { window.setTimeout(poll, every); });
  }
  window.setTimeout(poll, every);
}());
