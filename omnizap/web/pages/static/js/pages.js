// OmniZap Stickers web pages: small progressive enhancements. Every page works without this file.
// No inline scripts anywhere (CSP script-src 'self'); data comes from data-* attributes.
(function () {
  "use strict";

  var VIEWER_KEY_STORAGE = "omnizap.viewerKey";
  var REACTION_STORAGE_PREFIX = "omnizap.reaction.";
  var API_BASE = (document.documentElement.getAttribute("data-api-base") || "/api/sticker-packs").replace(/\/$/, "");

  function storageGet(name) {
    try {
      return window.localStorage.getItem(name);
    } catch (error) {
      return null; // private mode or storage disabled
    }
  }

  function storageSet(name, value) {
    try {
      window.localStorage.setItem(name, value);
    } catch (error) {
      /* not fatal: the server still deduplicates by viewer key for this page view */
    }
  }

  function randomToken() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // One anonymous key per browser, so the server can count a viewer's like once.
  var memoryViewerKey = null;
  function viewerKey() {
    var key = storageGet(VIEWER_KEY_STORAGE);
    if (key && /^[a-zA-Z0-9._:@-]{8,120}$/.test(key)) {
      return key;
    }
    key = memoryViewerKey || "web-" + randomToken();
    memoryViewerKey = key;
    storageSet(VIEWER_KEY_STORAGE, key);
    return key;
  }

  function announce(region, message, isError) {
    if (!region) return;
    region.textContent = "";
    region.classList.toggle("error", Boolean(isError));
    // A fresh text node makes screen readers announce repeated messages too.
    window.setTimeout(function () { region.textContent = message; }, 30);
  }

  function postInteraction(packKey, interaction) {
    return fetch(API_BASE + "/" + encodeURIComponent(packKey) + "/" + interaction, {
      method: "POST",
      headers: { "X-Viewer-Key": viewerKey(), "X-Client-Source": "web", Accept: "application/json" },
      credentials: "same-origin",
      keepalive: interaction === "open",
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) {
          var message = body && body.error && body.error.message ? body.error.message : "The server answered " + response.status + ".";
          throw new Error(message);
        }
        return body;
      });
    });
  }

  function formatCount(value) {
    var number = Number(value);
    if (!isFinite(number)) return "0";
    try {
      return number.toLocaleString(document.documentElement.lang || undefined);
    } catch (error) {
      return String(number);
    }
  }

  function updateCounts(root, engagement) {
    if (!engagement) return;
    root.querySelectorAll("[data-count]").forEach(function (element) {
      var field = element.getAttribute("data-count");
      if (Object.prototype.hasOwnProperty.call(engagement, field)) {
        element.textContent = formatCount(engagement[field]);
      }
    });
  }

  // --- pack page: open, like, dislike -----------------------------------------------------------
  function setupPackPage() {
    var page = document.querySelector("[data-pack-key]");
    if (!page) return;
    var packKey = page.getAttribute("data-pack-key");
    var status = document.getElementById("interaction-status");
    var buttons = page.querySelectorAll("button[data-interaction]");
    var reactionStorage = REACTION_STORAGE_PREFIX + packKey;

    function markPressed(interaction) {
      buttons.forEach(function (button) {
        button.setAttribute("aria-pressed", String(button.getAttribute("data-interaction") === interaction));
      });
    }

    var previous = storageGet(reactionStorage);
    if (previous === "like" || previous === "dislike") {
      markPressed(previous);
    }

    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        var interaction = button.getAttribute("data-interaction");
        if (button.getAttribute("aria-pressed") === "true") {
          announce(status, button.getAttribute("data-already") || "Already counted.");
          return; // this browser already counted it: never send it twice
        }
        buttons.forEach(function (other) { other.disabled = true; });
        postInteraction(packKey, interaction)
          .then(function (body) {
            var data = body && body.data ? body.data : {};
            updateCounts(page, data.engagement);
            markPressed(interaction);
            storageSet(reactionStorage, interaction);
            announce(status, button.getAttribute("data-done") || "Thanks!");
          })
          .catch(function (error) {
            announce(status, error.message || "Could not reach the server.", true);
          })
          .then(function () {
            buttons.forEach(function (other) { other.disabled = false; });
          });
      });
    });

    // Count the visit once per page view (the server deduplicates repeat views per viewer).
    postInteraction(packKey, "open")
      .then(function (body) {
        if (body && body.data) updateCounts(page, body.data.engagement);
      })
      .catch(function () { /* a missed view count is not worth bothering the visitor */ });
  }

  // --- share and copy ----------------------------------------------------------------------------
  function setupSharing() {
    document.querySelectorAll("[data-copy-target]").forEach(function (button) {
      var input = document.getElementById(button.getAttribute("data-copy-target"));
      var status = document.getElementById(button.getAttribute("data-status") || "");
      if (!input) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        var done = function () { announce(status, button.getAttribute("data-done") || "Copied."); };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(input.value).then(done, function () {
            input.select();
            announce(status, "Press Ctrl+C to copy the selected link.", true);
          });
        } else {
          input.select();
          var copied = false;
          try {
            copied = document.execCommand("copy");
          } catch (error) {
            copied = false;
          }
          if (copied) done();
          else announce(status, "Press Ctrl+C to copy the selected link.", true);
        }
      });
    });
    document.querySelectorAll("[data-share-url]").forEach(function (button) {
      if (typeof navigator.share !== "function") return;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.share({
          title: button.getAttribute("data-share-title") || document.title,
          url: button.getAttribute("data-share-url"),
        }).catch(function () { /* cancelled */ });
      });
    });
  }

  // --- catalog: auto-apply filters, "load more" -----------------------------------------------------
  function setupCatalog() {
    var form = document.querySelector("form[data-autosubmit]");
    if (form) {
      form.querySelectorAll("select").forEach(function (select) {
        select.addEventListener("change", function () { form.requestSubmit ? form.requestSubmit() : form.submit(); });
      });
    }

    var results = document.getElementById("results");
    if (!results) return;
    var status = document.getElementById("results-status");

    function wire(link) {
      if (!link) return;
      link.setAttribute("role", "button");
      link.textContent = link.getAttribute("data-load-more") || "Load more";
      link.addEventListener("click", function (event) {
        event.preventDefault();
        if (link.getAttribute("aria-disabled") === "true") return;
        link.setAttribute("aria-disabled", "true");
        var url = link.href;
        fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" })
          .then(function (response) {
            if (!response.ok) throw new Error("The server answered " + response.status + ".");
            return response.text();
          })
          .then(function (html) {
            var next = new DOMParser().parseFromString(html, "text/html");
            var items = next.querySelectorAll("#results > li");
            var firstNew = null;
            items.forEach(function (item) {
              var adopted = document.importNode(item, true);
              results.appendChild(adopted);
              if (!firstNew) firstNew = adopted;
            });
            var newPager = next.querySelector("[data-pager]");
            var pager = document.querySelector("[data-pager]");
            if (pager) {
              if (newPager) {
                var kept = pager.querySelector("[rel=prev]");
                var replacement = document.importNode(newPager, true);
                // Earlier results stay on screen, so "previous" still means the page before the first.
                var replacedPrev = replacement.querySelector("[rel=prev]");
                if (replacedPrev) replacedPrev.remove();
                if (kept) replacement.insertBefore(kept, replacement.firstChild);
                pager.replaceWith(replacement);
                wire(replacement.querySelector("[data-load-more]"));
              } else {
                pager.remove();
              }
            }
            announce(status, items.length + " more packs loaded.");
            var focusTarget = firstNew && firstNew.querySelector("a");
            if (focusTarget) focusTarget.focus({ preventScroll: false });
          })
          .catch(function (error) {
            link.removeAttribute("aria-disabled");
            announce(status, error.message || "Could not load more packs.", true);
          });
      });
    }

    wire(document.querySelector("[data-pager] [data-load-more]"));
  }

  // Covers that fail to load (deleted file, network) show the placeholder instead of a broken icon.
  function setupImageFallbacks() {
    document.querySelectorAll("img[data-fallback]").forEach(function (image) {
      var swap = function () {
        image.removeEventListener("error", swap);
        image.src = image.getAttribute("data-fallback");
      };
      image.addEventListener("error", swap);
    });
  }

  function start() {
    setupImageFallbacks();
    setupPackPage();
    setupSharing();
    setupCatalog();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
