"""The staff area's pages, one module per part of the work."""
