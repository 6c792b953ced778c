"""Benchmark of the wallboard against the peers' way (polling the whole state): `python -m bench.run`."""
