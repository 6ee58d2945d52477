"""spendscope's benchmarks (``make bench``): each prints ratios against a same-run baseline."""
