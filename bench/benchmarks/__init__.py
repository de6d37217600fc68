"""Benchmark modules: they arrange inputs from the fixtures and measure, nothing else."""
