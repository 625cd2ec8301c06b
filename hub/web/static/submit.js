// The submission page: hash the chosen file on this device, put only the hash in the form.
//
// The file input has no name and sits outside the form, so the browser never sends the
// file; this script reads it locally with static/hashing/pdq.js (pictures) and md5.js
// (videos) and fills the form's three hidden fields: type, hash, quality.
"use strict";
(() => {
  const MIN_QUALITY = 50;
  const form = document.getElementById("submission");
  const file = document.getElementById("file");
  const send = document.getElementById("send");
  const progress = document.getElementById("progress");
  const status = document.getElementById("hash-status");
  const fields = {
    type: document.getElementById("hash-type"),
    hash: document.getElementById("hash-value"),
    quality: document.getElementById("hash-quality"),
  };
  const preview = {
    type: document.getElementById("preview-type"),
    hash: document.getElementById("preview-hash"),
  };
  let run = 0;

  function media() {
    const checked = document.querySelector("input[name=media]:checked");
    return checked ? checked.value : "image";
  }

  function clear(message) {
    fields.type.value = fields.hash.value = fields.quality.value = "";
    preview.type.textContent = preview.hash.textContent = "—";
    send.disabled = true;
    progress.hidden = true;
    status.textContent = message || "";
  }

  function ready(type, hash, quality, note) {
    fields.type.value = type;
    fields.hash.value = hash;
    fields.quality.value = quality === null ? "" : String(quality);
    preview.type.textContent = type === "pdq" ? "PDQ (picture)" : "MD5 (video file)";
    preview.hash.textContent = hash;
    progress.hidden = true;
    status.textContent = note;
    send.disabled = false;
  }

  async function compute() {
    const mine = ++run;
    const chosen = file.files && file.files[0];
    if (!chosen) {
      clear("");
      return;
    }
    clear("Working out the hash on your device…");
    try {
      if (media() === "image") {
        const result = await globalThis.hashhubPDQ.fromFile(chosen);
        if (mine !== run) return;
        if (result.quality < MIN_QUALITY) {
          clear(`This picture has too little detail for a reliable hash (quality ${result.quality}, at least ${MIN_QUALITY} is needed). Nothing was sent.`);
          return;
        }
        ready("pdq", result.hash, result.quality, `Done: quality ${result.quality}. Check below, then send.`);
      } else {
        progress.hidden = false;
        progress.value = 0;
        const hex = await globalThis.hashhubMD5.fromFile(chosen, (done, total) => {
          if (mine === run) progress.value = total ? done / total : done;
        });
        if (mine !== run) return;
        ready("md5", hex, null, "Done. Check below, then send.");
      }
    } catch (error) {
      if (mine !== run) return;
      clear(media() === "image"
        ? "This file could not be opened as a picture on this device. If it is a video, choose “video” above."
        : "This file could not be read. Nothing was sent.");
    }
  }

  file.addEventListener("change", compute);
  for (const radio of document.querySelectorAll("input[name=media]")) {
    radio.addEventListener("change", compute);
  }
  form.addEventListener("submit", (event) => {
    if (!fields.hash.value) event.preventDefault();
  });
  clear("");
})();
