"""A second reader of the entries format, written from PROTOCOL.md and the vectors alone."""
