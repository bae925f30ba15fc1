// Live parts without a reload: on an event that concerns the page (server-sent events where the broker fans
// events out, else every 5 s) the page's <main> is fetched again and swapped in. Forms that act ask first.
(() => {
  "use strict";
  function bind() {
    for (const form of document.querySelectorAll("form[data-confirm]")) {
      if (form.dataset.bound) continue;
      form.dataset.bound = "1";
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    }
  }
  async function refresh() {
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html").querySelector("main");
    const main = document.querySelector("main");
    if (fresh && main) {
      main.innerHTML = fresh.innerHTML;
      bind();
    }
  }
  bind();
  const main = document.querySelector("main");
  const live = main ? main.dataset.live : undefined;
  if (!live) return;
  let pending = null;
  const soon = () => {
    if (pending === null) pending = setTimeout(() => { pending = null; refresh().catch(() => {}); }, 250);
  };
  if (document.body.dataset.stream === "on" && window.EventSource) {
    const source = new EventSource("/events/stream");
    source.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (live === "all" || live === "job:" + event.job_id) soon();
    };
  } else {
    setInterval(soon, 5000);
  }
})();
