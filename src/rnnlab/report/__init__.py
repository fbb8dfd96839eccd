"""Reports: plots, row-by-row introspection, HTML."""
