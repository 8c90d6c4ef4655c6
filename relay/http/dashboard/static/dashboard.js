// hpoll dashboard: keeps the Homes table fresh without reloading the page, and filters it as
// you type. Everything here is optional: the server-rendered page works without it.
"use strict";
(function () {
  const box = document.getElementById("homes");
  if (!box) {
    return;
  }
  const search = document.getElementById("q");
  const seconds = Number(box.dataset.refresh) || 30;

  function filter() {
    const wanted = search ? search.value.trim().toLocaleLowerCase() : "";
    for (const row of box.querySelectorAll("tbody tr")) {
      const name = row.querySelector("th").textContent.toLocaleLowerCase();
      row.hidden = wanted !== "" && !name.includes(wanted);
    }
  }

  function say(text) {
    let note = document.getElementById("refresh-note");
    if (!note) {
      note = document.createElement("p");
      note.id = "refresh-note";
      note.className = "error";
      note.setAttribute("role", "status");
      box.before(note);
    }
    note.textContent = text;
    note.hidden = text === "";
  }

  async function refresh() {
    if (document.hidden) {
      return;
    }
    try {
      const response = await fetch(box.dataset.source + window.location.search, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (response.redirected) {
        window.location.reload(); // signed out meanwhile: show the sign-in page
        return;
      }
      if (!response.ok) {
        throw new Error(String(response.status));
      }
      box.innerHTML = await response.text();
      filter();
      say("");
    } catch (error) {
      say("Could not update at " + new Date().toLocaleTimeString() + "; trying again soon.");
    }
  }

  if (search) {
    search.addEventListener("input", filter);
  }
  window.setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", refresh);
})();
