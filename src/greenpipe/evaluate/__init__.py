"""Model evaluation: quality (accuracy, macro-F1), speed (latency, throughput), energy/inference."""
