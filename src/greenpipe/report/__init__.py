"""Reports: one run's models and stages (tables, verdicts, pages, plots), and the cross-run
Pareto front of accuracy against energy over every run of the MLflow experiment."""
