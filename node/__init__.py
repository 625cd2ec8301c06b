"""The node: what a participating platform runs (sync, store, matcher, match API).

Built on ``protocol``. Not implemented yet; the package exists so the layout of
the distribution is fixed from the start.
"""
