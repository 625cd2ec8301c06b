// The submission page: hash the chosen file on this device, put only the hash in the form.
//
// The file input has no name and sits outside the form, so the browser never sends the
// file; this script reads it locally with static/hashing/pdq.js (pictures) and md5.js
// (videos) and fills the form's three hidden fields: type, hash, quality.
//
// The choices (one radio per hash type the hub takes, with its type, preview label and
// quality floor as data attributes) are written by the server from its registry of hash
// types; HASHERS says how to call each type's browser hasher.
"use strict";
(() => {
  const HASHERS = {
    pdq: async (blob) => globalThis.hashhubPDQ.fromFile(blob),
    md5: async (blob, onProgress) => ({
      hash: await globalThis.hashhubMD5.fromFile(blob, onProgress),
      quality: null,
    }),
  };
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

  function choice() {
    return document.querySelector("input[name=media]:checked")
      || document.querySelector("input[name=media]");
  }

  function media() {
    return choice().value;
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
    preview.type.textContent = choice().dataset.preview;
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
    const type = choice().dataset.hashType;
    const floor = choice().dataset.minQuality === "" ? null : Number(choice().dataset.minQuality);
    try {
      if (media() !== "image") {
        progress.hidden = false;
        progress.value = 0;
      }
      const result = await HASHERS[type](chosen, (done, total) => {
        if (mine === run) progress.value = total ? done / total : done;
      });
      if (mine !== run) return;
      if (floor !== null && result.quality < floor) {
        clear(`This picture has too little detail for a reliable hash (quality ${result.quality}, at least ${floor} is needed). Nothing was sent.`);
        return;
      }
      ready(type, result.hash, result.quality, result.quality === null
        ? "Done. Check below, then send."
        : `Done: quality ${result.quality}. Check below, then send.`);
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
