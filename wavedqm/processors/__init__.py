"""One processor per kind of data, a registry of them, and the router that hands each file to
every processor that accepts it (see :mod:`wavedqm.processors.base`)."""
