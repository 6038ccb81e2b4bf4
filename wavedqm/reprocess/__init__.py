"""``wavedqm reprocess``: an archive through the daemon's processors on a Dask cluster."""
