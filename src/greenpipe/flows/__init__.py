"""Prefect flows that drive the DVC pipeline: the experiment, sweeps, serving.

Imported only by the CLI's run, sweep and serve (and by the thin entry points in the repo's
flows/ folder), so `import greenpipe` stays free of Prefect. They are part of the installed
package so that every process that runs their tasks (a Dask scheduler and its workers, a
Prefect worker) imports them from the environment, whatever its working directory.
"""
