"""The ground floor: the input error every layer raises and the results store every layer reads.

errors: `BenchInputError`, a bad option, file or value named before any timing starts.
history: saved runs in series folders (one per machine and run configuration), atomic writes.
Imports nothing of the suite above it, and never torch or transformers.
"""
