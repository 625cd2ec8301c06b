"""What the hub's and the node's pages share, so both read as one product.

One stylesheet, ``static/hashhub.css``: the header, typography, cards, tables,
buttons, forms, notices and the rules that keep hashes, key ids and dates whole
(``.token``, ``.table-scroll``). The hub and the node never import each other,
so each serves this file under its own static path (``stylesheet()``) and adds
a small stylesheet of its own for what only its pages have.
"""

from __future__ import annotations

from importlib.resources import files

__all__ = ["STYLESHEET", "stylesheet"]

STYLESHEET = "hashhub.css"
"""The shared stylesheet's file name, the same under both static paths."""


def stylesheet() -> bytes:
    """The shared stylesheet's bytes, read from the installed package."""
    return files("edge.web").joinpath("static", STYLESHEET).read_bytes()
