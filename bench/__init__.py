"""HYDRA's benchmarks: each module here with a `main(argv) -> int` is one, run by `python -m bench`.

Benchmarks report figures and write them under bench/results; they never assert on timings,
since the machines they run on are shared and their load varies.
"""
