"""The hub: the clearinghouse service (storage, publishing, HTTP API, CLI).

Built on ``protocol``. Not implemented yet; the package exists so the layout of
the distribution is fixed from the start.
"""
