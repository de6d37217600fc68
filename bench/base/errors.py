"""The one exception type for bad input, so every front end can report it the same way."""


class BenchInputError(ValueError):
    """Bad user input: the message names the option or file and says what is wrong with it."""
