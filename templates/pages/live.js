// firebreak's live timeline: appends each new entry the server sends (GET
// /incidents/{key}/events, event `entry`, data one rendered and escaped <li>) to the
// page's <ol id="timeline">, says so while the stream is reconnecting, and goes to the
// sign-in page when the server says the session has ended (event `signed-out`). No build step.
(function () {
  "use strict";
  var list = document.getElementById("timeline");
  var hint = document.getElementById("live-hint");
  if (!list || !list.dataset.events || !window.EventSource) return;
  function say(text) {
    if (!hint) return;
    hint.textContent = text;
    hint.hidden = !text;
  }
  var source = new EventSource(list.dataset.events);
  source.addEventListener("entry", function (event) {
    var holder = document.createElement("template");
    holder.innerHTML = event.data.trim();
    var item = holder.content.firstElementChild;
    if (!item || !/^[0-9]+$/.test(item.dataset.id || "")) return;
    if (list.querySelector('li[data-id="' + item.dataset.id + '"]')) return;
    list.appendChild(item);
  });
  // The session or token the page was opened with has ended: sign in again, then come back.
  source.addEventListener("signed-out", function () {
    source.close();
    window.location.assign(
      "/signin?next=" + encodeURIComponent(window.location.pathname + window.location.search)
    );
  });
  source.addEventListener("open", function () {
    say("");
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) {
      say("Live updates stopped; reload the page to see new entries.");
    } else {
      say("reconnecting…");
    }
  });
})();
