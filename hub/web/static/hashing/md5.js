/*
 * MD5 of a file, computed in the person's own browser.
 *
 * The submission page hashes a video on the device so that only the digest is
 * ever sent: this file never makes a request. Web Crypto has no MD5 (and no
 * incremental digest at all), so this is an implementation of RFC 1321, written
 * for this project from the RFC's description: 64-byte blocks of sixteen
 * little-endian words, four rounds of sixteen steps with the functions F, G, H
 * and I, the sine-derived constants T[i] = floor(2^32 * |sin(i)|) and the RFC's
 * shift amounts; padding with one 0x80 byte, zeros to 56 bytes mod 64, and the
 * message length in bits as a little-endian 64-bit number.
 *
 * fromFile reads the file in slices (file.slice(...).arrayBuffer()) and feeds an
 * incremental hasher, so a 2 GB video costs one slice of memory, not 2 GB.
 *
 * MD5 is broken for collision resistance; here it only names exact copies of a
 * file, as the lists the hub publishes do.
 *
 * Interface (a plain <script src>, also usable in a Worker):
 *   hashhubMD5.hex(arrayBufferOrView)                 -> "<32 hex>"
 *   await hashhubMD5.fromFile(blob, onProgress?, {chunkSize}?) -> "<32 hex>"
 *   hashhubMD5.createHasher() -> {update(bytes), hex()}
 * onProgress(bytesRead, totalBytes) is called after each slice.
 */
(function (root) {
  "use strict";

  /** Bytes read from the file at a time by fromFile. */
  const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;

  // T[i] = floor(2^32 * |sin(i + 1)|), RFC 1321 section 3.4.
  const T = new Int32Array([
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
  ]);

  // Left-rotation amounts per step, RFC 1321 section 3.4 (four per round, repeated).
  const SHIFTS = new Uint8Array([
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
  ]);

  /** Which message word step i reads (round 1: i, 2: 5i+1, 3: 3i+5, 4: 7i, mod 16). */
  const WORD = new Uint8Array(64);
  for (let i = 0; i < 64; i++) {
    const round = i >> 4;
    WORD[i] = [i, 5 * i + 1, 3 * i + 5, 7 * i][round] & 15;
  }

  /** Fold one 64-byte block at `offset` of `bytes` into `state` (four int32 words). */
  function processBlock(state, bytes, offset, words) {
    for (let w = 0, p = offset; w < 16; w++, p += 4) {
      words[w] = bytes[p] | (bytes[p + 1] << 8) | (bytes[p + 2] << 16) | (bytes[p + 3] << 24);
    }
    let a = state[0];
    let b = state[1];
    let c = state[2];
    let d = state[3];
    for (let i = 0; i < 64; i++) {
      let f;
      if (i < 16) f = (b & c) | (~b & d);
      else if (i < 32) f = (b & d) | (c & ~d);
      else if (i < 48) f = b ^ c ^ d;
      else f = c ^ (b | ~d);
      const sum = (a + f + T[i] + words[WORD[i]]) | 0;
      const s = SHIFTS[i];
      a = d;
      d = c;
      c = b;
      b = (b + ((sum << s) | (sum >>> (32 - s)))) | 0;
    }
    state[0] = (state[0] + a) | 0;
    state[1] = (state[1] + b) | 0;
    state[2] = (state[2] + c) | 0;
    state[3] = (state[3] + d) | 0;
  }

  function asBytes(input) {
    if (input instanceof ArrayBuffer) return new Uint8Array(input);
    if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    throw new TypeError("hashhubMD5 needs an ArrayBuffer or a typed array");
  }

  /** An incremental MD5: update() any number of times, then hex() once. */
  function createHasher() {
    const state = new Int32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]);
    const pending = new Uint8Array(64);
    const words = new Int32Array(16);
    let pendingLength = 0;
    let totalBytes = 0;
    let finished = false;

    function update(input) {
      if (finished) throw new Error("hashhubMD5: this hasher has already given its digest");
      const bytes = asBytes(input);
      totalBytes += bytes.length;
      let offset = 0;
      if (pendingLength > 0) {
        const take = Math.min(64 - pendingLength, bytes.length);
        pending.set(bytes.subarray(0, take), pendingLength);
        pendingLength += take;
        offset = take;
        if (pendingLength < 64) return;
        processBlock(state, pending, 0, words);
        pendingLength = 0;
      }
      for (; offset + 64 <= bytes.length; offset += 64) processBlock(state, bytes, offset, words);
      pending.set(bytes.subarray(offset), 0);
      pendingLength = bytes.length - offset;
    }

    function hex() {
      if (finished) throw new Error("hashhubMD5: this hasher has already given its digest");
      const bits = totalBytes * 8; // exact below 2^53 bits, i.e. any file up to a petabyte
      const padding = new Uint8Array(((55 - pendingLength) & 63) + 9);
      padding[0] = 0x80;
      const low = bits % 0x100000000;
      const high = Math.floor(bits / 0x100000000);
      const view = new DataView(padding.buffer);
      view.setUint32(padding.length - 8, low, true);
      view.setUint32(padding.length - 4, high, true);
      const counted = totalBytes;
      update(padding);
      totalBytes = counted;
      finished = true;
      let out = "";
      for (let i = 0; i < 16; i++) {
        const byte = (state[i >> 2] >>> ((i & 3) * 8)) & 0xff; // each word little-endian
        out += byte.toString(16).padStart(2, "0");
      }
      return out;
    }

    return { update, hex };
  }

  /** MD5 of bytes in memory. */
  function hex(input) {
    const hasher = createHasher();
    hasher.update(input);
    return hasher.hex();
  }

  /**
   * MD5 of a File or Blob, read a slice at a time.
   * @param {Blob} file
   * @param {(bytesRead: number, totalBytes: number) => void} [onProgress]
   * @param {{chunkSize?: number}} [options]
   * @returns {Promise<string>}
   */
  async function fromFile(file, onProgress, options) {
    if (typeof Blob === "undefined" || !(file instanceof Blob)) {
      throw new TypeError("hashhubMD5.fromFile needs a File or Blob");
    }
    const chunkSize = (options && options.chunkSize) || DEFAULT_CHUNK_SIZE;
    if (!Number.isInteger(chunkSize) || chunkSize < 64) {
      throw new RangeError("hashhubMD5.fromFile: chunkSize must be a whole number of bytes, at least 64");
    }
    const hasher = createHasher();
    for (let start = 0; start < file.size; start += chunkSize) {
      const end = Math.min(file.size, start + chunkSize);
      hasher.update(await file.slice(start, end).arrayBuffer());
      if (onProgress) onProgress(end, file.size);
    }
    if (file.size === 0 && onProgress) onProgress(0, 0);
    return hasher.hex();
  }

  root.hashhubMD5 = Object.freeze({ hex, fromFile, createHasher });
})(globalThis);
