"""Model optimization: structured pruning (`prune`); int8 quantization lives in each backend."""
