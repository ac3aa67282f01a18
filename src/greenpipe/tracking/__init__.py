"""Energy (CodeCarbon), MLflow runs and `stage_run`, the one context that wraps every stage."""
