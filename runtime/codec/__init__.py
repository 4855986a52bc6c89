"""Codecs: SCALE for what Substrate clients sign and read, canonical msgpack for everything else."""
