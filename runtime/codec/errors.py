"""The one error family every decoder raises on bad input."""


class CodecError(ValueError):
    """Bytes that do not decode: truncated, too long, trailing data, wrong type or length."""
