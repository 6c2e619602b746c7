"""Command-line interface: parsing and writing only; the work is done by library functions."""
