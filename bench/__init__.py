"""Benchmarks of the apiserver (`python -m bench`) and of the etcd clients it
could use (`python -m bench.etcd_clients`); see bench/README.md."""
