"""Engine benchmarks: the product's workflow against a null workflow on the same stack (bench/README.md)."""
