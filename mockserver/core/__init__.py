"""The pure rule engine: bytes and a file name in, a verdict out. No I/O, no clock, no globals."""
