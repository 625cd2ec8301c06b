"""What a browser test reads of a page's layout: tokens kept whole, tables that scroll.

Scripts for ``page.evaluate``:

- ``TOKENS_ON_ONE_LINE``: per non-empty ``.token`` (a hash, key id, case number,
  date), on how many lines the browser laid its text out (a token broken inside
  spans two or more) and whether it overflows its cell, cut off.
- ``TABLE_SCROLLERS``: per table, whether its parent is a ``.table-scroll`` box,
  that box's computed ``overflow-x``, whether the table is wider than the box
  and whether the box's scroll width reaches the table's whole width.
"""

from __future__ import annotations

__all__ = ["TABLE_SCROLLERS", "TOKENS_ON_ONE_LINE"]

TOKENS_ON_ONE_LINE = """
() => [...document.querySelectorAll('.token')].filter(el => el.textContent.trim()).map(el => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const rects = [...range.getClientRects()].filter(r => r.width > 0);
  const lines = new Set(rects.map(r => Math.round(r.top)));
  const cell = el.closest('td, th');
  return {
    text: el.textContent.trim(),
    lines: lines.size,
    clipped: cell ? cell.scrollWidth > cell.clientWidth + 1 : false,
  };
})
"""

TABLE_SCROLLERS = """
() => [...document.querySelectorAll('table')].map(table => {
  const box = table.parentElement;
  return {
    scroller: box.classList.contains('table-scroll'),
    overflow: getComputedStyle(box).overflowX,
    wider: table.scrollWidth > box.clientWidth,
    reachable: box.scrollWidth >= table.scrollWidth,
  };
})
"""
