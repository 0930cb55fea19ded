"""Raster input and output: scene and patch grids, reads, writers."""
