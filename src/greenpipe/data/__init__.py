"""Data sources, cleaning, augmentation and compression: pure functions on arrays.

Images are float32 arrays of shape (N, H, W, C) in [0, 1]; labels are int64 of shape (N,).
"""

Splits = dict  # {"train" | "val" | "test": (x, y)}
