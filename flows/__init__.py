"""Prefect entry points (`prefect deploy flows/experiment.py:experiment`): the flows themselves
live in the installed package (greenpipe.flows), so that Dask schedulers, Dask workers and
Prefect workers import them from the environment, never from this folder."""
