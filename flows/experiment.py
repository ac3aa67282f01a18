"""The experiment flow, for Prefect's file entry points (its code: greenpipe.flows.experiment).

prefect deploy flows/experiment.py:experiment --name nightly --pool greenpipe
"""

from greenpipe.flows.experiment import experiment, run_stage, serve

__all__ = ["experiment", "run_stage", "serve"]
