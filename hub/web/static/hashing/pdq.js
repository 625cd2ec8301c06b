/*
 * PDQ perceptual hash of a picture, computed in the person's own browser.
 *
 * The submission page hashes the picture on the device so that only the hash is
 * ever sent: this file never makes a request and never keeps the pixels.
 *
 * What it implements: Meta's PDQ (ThreatExchange, "pdqhash-2017-10-09.pdf"), as
 * the reference C++ hasher does it (pdq/cpp/hashing/pdqhashing.cpp and
 * pdq/cpp/downscaling/downscaling.cpp), written anew for this project:
 *
 *   1. luminance Y = 0.299 R + 0.587 G + 0.114 B (alpha is ignored);
 *   2. two passes of Jarosz box filters along rows then columns (a tent-like
 *      blur), with window ceil(side / 128), then decimation to 64 x 64 by
 *      sampling the pixel under each output pixel's centre (a 64 x 64 picture is
 *      taken as it is);
 *   3. quality: the sum of the 64 x 64 picture's quantised gradients / 90,
 *      capped at 100 (below ~50 the picture is too flat for its hash to mean much);
 *   4. the 16 x 16 lowest non-constant DCT coefficients (D A D^T, D the 16 x 64
 *      DCT-II matrix scaled by sqrt(2/64), rows 1..16);
 *   5. bit k = i*16 + j is set when coefficient (i, j) is greater than the median
 *      (the 128th smallest), so a hash has 128 one-bits (pictures under 5 px on a
 *      side get the all-zero hash and quality 0, as in the reference);
 *   6. hex: 64 lowercase digits, most significant first, bit 255 leading, the
 *      reference's Hash256::format order (and pdqhash's, as the node prints it).
 *
 * Arithmetic is single precision where the reference's is (every sum, product and
 * quotient is rounded to float32 with Math.fround), so on the same pixels the hash
 * is the reference's bit for bit. Luminance is rounded to float32 from a double
 * sum, as the Python binding the node uses computes it.
 *
 * fromFile decodes the picture in the browser with the EXIF orientation applied
 * (as the node's ImageOps.exif_transpose does) and no colour-profile conversion
 * (the node's Pillow does none) and hashes it at its own size, as the reference
 * hasher (pdqhash on the full picture) and the node do: the blur's window is
 * taken from the picture's size, so a picture shrunk first hashes differently.
 * Only a picture longer than MAX_SIDE (2048 px) is shrunk, by exact area
 * averaging, which at that size moves the hash by a bit or two. The picture is
 * read through a canvas a strip of rows at a time, so a large photo never needs a
 * second full-size pixel copy.
 *
 * Known limits: fully transparent pixels come back from a canvas as black
 * (their colour is lost when the canvas premultiplies alpha), where the node
 * hashes whatever colour they carry; browsers that add noise to canvas reads
 * against fingerprinting shift a few bits. Both stay well inside PDQ's matching
 * threshold for ordinary photos.
 *
 * Interface (a plain <script src>, also usable in a Worker):
 *   hashhubPDQ.fromImageData(imageData) -> {hash, quality}
 *   await hashhubPDQ.fromFile(blob)     -> {hash, quality, width, height}
 * width and height are the picture's as shown (after orientation), not the
 * shrunk size that was hashed.
 */
(function (root) {
  "use strict";

  const f32 = Math.fround;

  /** Longest side of the picture that is hashed at its own size (larger: shrunk to it). */
  const MAX_SIDE = 2048;
  /** PDQ reduces every picture to this many samples a side. */
  const SAMPLES = 64;
  /** Number of DCT coefficients kept a side. */
  const COEFFS = 16;
  /** The reference refuses pictures smaller than this on either side. */
  const MIN_HASHABLE_SIDE = 5;
  /** Row+column box-filter pass pairs (two make the tent filter). */
  const JAROSZ_PASSES = 2;
  /** Pixels read from the canvas at a time when shrinking. */
  const STRIP_PIXELS = 1 << 22;

  /** 16 x 64 DCT-II rows 1..16, float32 as the reference stores them. */
  const DCT = (function () {
    const matrix = new Float32Array(COEFFS * SAMPLES);
    const scale = f32(Math.sqrt(2 / SAMPLES));
    for (let i = 0; i < COEFFS; i++) {
      for (let j = 0; j < SAMPLES; j++) {
        matrix[i * SAMPLES + j] = scale * Math.cos((Math.PI / 2 / SAMPLES) * (i + 1) * (2 * j + 1));
      }
    }
    return matrix;
  })();

  function lumaOf(imageData) {
    const { width, height, data } = imageData;
    const luma = new Float32Array(width * height);
    for (let p = 0, q = 0; p < luma.length; p++, q += 4) {
      luma[p] = data[q] * 0.299 + data[q + 1] * 0.587 + data[q + 2] * 0.114;
    }
    return luma;
  }

  /** Jarosz window: half a 64th of the side, rounded up (two passes make a full one). */
  function windowSize(oldSide, newSide) {
    return Math.floor((oldSide + 2 * newSide - 1) / (2 * newSide));
  }

  /**
   * One box-filter pass over `length` values `stride` apart, centred, with the
   * window shrinking at both ends (the reference's four phases).
   */
  function box1D(input, output, start, length, stride, window) {
    const half = Math.floor((window + 2) / 2);
    let left = start;
    let right = start;
    let out = start;
    let sum = 0;
    let count = 0;
    for (let i = 0; i < half - 1; i++) {
      sum = f32(sum + input[right]);
      count++;
      right += stride;
    }
    for (let i = 0; i < window - half + 1; i++) {
      sum = f32(sum + input[right]);
      count++;
      output[out] = sum / count;
      right += stride;
      out += stride;
    }
    for (let i = 0; i < length - window; i++) {
      sum = f32(sum + input[right]);
      sum = f32(sum - input[left]);
      output[out] = sum / count;
      left += stride;
      right += stride;
      out += stride;
    }
    for (let i = 0; i < half - 1; i++) {
      sum = f32(sum - input[left]);
      count--;
      output[out] = sum / count;
      left += stride;
      out += stride;
    }
  }

  /** Blur `luma` in place (rows into `scratch`, columns back into `luma`). */
  function jaroszFilter(luma, scratch, rows, cols, windowAlongRows, windowAlongCols) {
    for (let pass = 0; pass < JAROSZ_PASSES; pass++) {
      for (let i = 0; i < rows; i++) box1D(luma, scratch, i * cols, cols, 1, windowAlongRows);
      for (let j = 0; j < cols; j++) box1D(scratch, luma, j, rows, cols, windowAlongCols);
    }
  }

  function downsampleTo64(luma, rows, cols) {
    if (rows === SAMPLES && cols === SAMPLES) return Float32Array.from(luma);
    jaroszFilter(
      luma,
      new Float32Array(luma.length),
      rows,
      cols,
      windowSize(cols, SAMPLES),
      windowSize(rows, SAMPLES),
    );
    const samples = new Float32Array(SAMPLES * SAMPLES);
    for (let i = 0; i < SAMPLES; i++) {
      const row = Math.floor(((i + 0.5) * rows) / SAMPLES);
      for (let j = 0; j < SAMPLES; j++) {
        const col = Math.floor(((j + 0.5) * cols) / SAMPLES);
        samples[i * SAMPLES + j] = luma[row * cols + col];
      }
    }
    return samples;
  }

  /** Sum of significant vertical and horizontal steps, scaled to 0..100. */
  function qualityOf(samples) {
    let gradients = 0;
    const step = (u, v) => Math.abs(Math.trunc(f32(f32(f32(u - v) * 100) / 255)));
    for (let i = 0; i < SAMPLES - 1; i++) {
      for (let j = 0; j < SAMPLES; j++) {
        gradients += step(samples[i * SAMPLES + j], samples[(i + 1) * SAMPLES + j]);
      }
    }
    for (let i = 0; i < SAMPLES; i++) {
      for (let j = 0; j < SAMPLES - 1; j++) {
        gradients += step(samples[i * SAMPLES + j], samples[i * SAMPLES + j + 1]);
      }
    }
    return Math.min(100, Math.floor(gradients / 90));
  }

  /** B = D A D^T, summed in float32 in the reference's order. */
  function dct16(samples) {
    const partial = new Float32Array(COEFFS * SAMPLES);
    for (let i = 0; i < COEFFS; i++) {
      for (let j = 0; j < SAMPLES; j++) {
        let sum = 0;
        for (let k = 0; k < SAMPLES; k++) {
          sum = f32(sum + f32(DCT[i * SAMPLES + k] * samples[k * SAMPLES + j]));
        }
        partial[i * SAMPLES + j] = sum;
      }
    }
    const coefficients = new Float32Array(COEFFS * COEFFS);
    for (let i = 0; i < COEFFS; i++) {
      for (let j = 0; j < COEFFS; j++) {
        let sum = 0;
        for (let k = 0; k < SAMPLES; k++) {
          sum = f32(sum + f32(partial[i * SAMPLES + k] * DCT[j * SAMPLES + k]));
        }
        coefficients[i * COEFFS + j] = sum;
      }
    }
    return coefficients;
  }

  function hexOfBits(coefficients) {
    const median = Float32Array.from(coefficients).sort()[127];
    const bytes = new Uint8Array(32);
    for (let k = 0; k < 256; k++) {
      if (coefficients[k] > median) bytes[31 - (k >> 3)] |= 1 << (k & 7);
    }
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function checkedImageData(imageData) {
    const ok =
      imageData !== null &&
      typeof imageData === "object" &&
      Number.isInteger(imageData.width) &&
      Number.isInteger(imageData.height) &&
      imageData.width > 0 &&
      imageData.height > 0 &&
      imageData.data !== undefined &&
      imageData.data.length === imageData.width * imageData.height * 4;
    if (!ok) {
      throw new TypeError("hashhubPDQ.fromImageData needs an RGBA ImageData (width × height × 4 bytes)");
    }
    return imageData;
  }

  /**
   * PDQ of RGBA pixels (a canvas ImageData or anything shaped like one).
   * @returns {{hash: string, quality: number}}
   */
  function fromImageData(imageData) {
    const { width, height } = checkedImageData(imageData);
    if (width < MIN_HASHABLE_SIDE || height < MIN_HASHABLE_SIDE) {
      return { hash: "0".repeat(64), quality: 0 };
    }
    const samples = downsampleTo64(lumaOf(imageData), height, width);
    const quality = qualityOf(samples);
    return { hash: hexOfBits(dct16(samples)), quality };
  }

  /**
   * The hashed size: longest side MAX_SIDE, the other side whichever of its
   * floor and ceiling keeps the aspect ratio closest (as Pillow's thumbnail).
   */
  function shrunkSize(width, height) {
    if (width <= MAX_SIDE && height <= MAX_SIDE) return { width, height };
    const closest = (exact, aspectOf) => {
      const low = Math.max(1, Math.floor(exact));
      const high = Math.max(1, Math.ceil(exact));
      const aspect = width / height;
      return Math.abs(aspect - aspectOf(low)) <= Math.abs(aspect - aspectOf(high)) ? low : high;
    };
    if (width >= height) {
      return { width: MAX_SIDE, height: closest((MAX_SIDE * height) / width, (n) => MAX_SIDE / n) };
    }
    return { width: closest((MAX_SIDE * width) / height, (n) => n / MAX_SIDE), height: MAX_SIDE };
  }

  /**
   * How each of `source` pixels spreads over `target` (<= source) pixels by
   * area: every source pixel covers target/source of a target pixel, so it
   * lands in one target pixel or straddles two.
   */
  function areaWeights(source, target) {
    const first = new Int32Array(source);
    const weightFirst = new Float64Array(source);
    const weightNext = new Float64Array(source);
    for (let s = 0; s < source; s++) {
      const begin = s * target;
      const end = begin + target;
      const index = Math.floor(begin / source);
      const boundary = (index + 1) * source;
      first[s] = index;
      if (end <= boundary) {
        weightFirst[s] = target / source;
      } else {
        weightFirst[s] = (boundary - begin) / source;
        weightNext[s] = (end - boundary) / source;
      }
    }
    return { first, weightFirst, weightNext };
  }

  function readingCanvas(width, height) {
    const canvas =
      typeof OffscreenCanvas !== "undefined"
        ? new OffscreenCanvas(width, height)
        : Object.assign(document.createElement("canvas"), { width, height });
    const context = canvas.getContext("2d", { willReadFrequently: true, alpha: true });
    if (context === null) throw new Error("hashhubPDQ: this browser gives no 2D canvas to read pixels");
    context.imageSmoothingEnabled = false;
    return context;
  }

  /** Area-average `bitmap` into an RGBA ImageData of `size`, a strip of rows at a time. */
  function shrink(bitmap, size) {
    const sourceWidth = bitmap.width;
    const sourceHeight = bitmap.height;
    const across = areaWeights(sourceWidth, size.width);
    const down = areaWeights(sourceHeight, size.height);
    const firstColumn = across.first;
    const columnWeight = across.weightFirst;
    const nextColumnWeight = across.weightNext;
    const stripRows = Math.max(1, Math.min(sourceHeight, Math.floor(STRIP_PIXELS / sourceWidth)));
    const context = readingCanvas(sourceWidth, stripRows);
    const rowStride = size.width * 3;
    const sums = new Float64Array(size.height * rowStride);
    const row = new Float64Array(rowStride);
    for (let top = 0; top < sourceHeight; top += stripRows) {
      const rows = Math.min(stripRows, sourceHeight - top);
      context.clearRect(0, 0, sourceWidth, stripRows);
      context.drawImage(bitmap, 0, top, sourceWidth, rows, 0, 0, sourceWidth, rows);
      const pixels = context.getImageData(0, 0, sourceWidth, rows).data;
      for (let r = 0; r < rows; r++) {
        row.fill(0);
        for (let x = 0, p = r * sourceWidth * 4; x < sourceWidth; x++, p += 4) {
          const d = firstColumn[x] * 3;
          const red = pixels[p];
          const green = pixels[p + 1];
          const blue = pixels[p + 2];
          const w0 = columnWeight[x];
          row[d] += red * w0;
          row[d + 1] += green * w0;
          row[d + 2] += blue * w0;
          const w1 = nextColumnWeight[x];
          if (w1 > 0) {
            row[d + 3] += red * w1;
            row[d + 4] += green * w1;
            row[d + 5] += blue * w1;
          }
        }
        const y = top + r;
        const base = down.first[y] * rowStride;
        const v0 = down.weightFirst[y];
        const v1 = down.weightNext[y];
        for (let c = 0; c < rowStride; c++) sums[base + c] += row[c] * v0;
        if (v1 > 0) {
          const next = base + rowStride;
          for (let c = 0; c < rowStride; c++) sums[next + c] += row[c] * v1;
        }
      }
    }
    const data = new Uint8ClampedArray(size.width * size.height * 4);
    for (let p = 0, q = 0; q < data.length; p += 3, q += 4) {
      data[q] = sums[p];
      data[q + 1] = sums[p + 1];
      data[q + 2] = sums[p + 2];
      data[q + 3] = 255;
    }
    return { width: size.width, height: size.height, data };
  }

  /**
   * Decode a picture in the browser and return its PDQ, quality and shown size.
   * Rejects with an Error when the browser cannot decode the file as a picture.
   * @param {Blob} file
   * @returns {Promise<{hash: string, quality: number, width: number, height: number}>}
   */
  async function fromFile(file) {
    if (typeof Blob === "undefined" || !(file instanceof Blob)) {
      throw new TypeError("hashhubPDQ.fromFile needs a File or Blob");
    }
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, {
        imageOrientation: "from-image",
        colorSpaceConversion: "none",
      });
    } catch (error) {
      throw new Error("This file is not a picture the browser can open (" + error.message + ")");
    }
    try {
      const { width, height } = bitmap;
      const { hash, quality } = fromImageData(shrink(bitmap, shrunkSize(width, height)));
      return { hash, quality, width, height };
    } finally {
      bitmap.close();
    }
  }

  root.hashhubPDQ = Object.freeze({ fromImageData, fromFile, MAX_SIDE });
})(globalThis);
