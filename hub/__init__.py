"""The hub: the clearinghouse service.

Storage (``store``), the operations (``core``), bulk intake (``intake``), the
HTTP service (``app``, ``scheduler``) and the ``hashhub`` command (``cli``).
Signing and every verification rule come from ``protocol``.
"""
