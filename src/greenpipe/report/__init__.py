"""Cross-model and cross-stage comparison: tables, Markdown/HTML pages and plots."""
