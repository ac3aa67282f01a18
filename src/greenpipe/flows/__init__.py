"""The orchestration edge: the Prefect flows that drive the DVC pipeline (the experiment,
sweeps, serving) and `greenpipe verify`'s re-runs in scratch workspaces (verify.py; no
Prefect). Here, not in the library, is where subprocesses for DVC are started.

Imported only by the CLI (and by the thin entry points in the repo's flows/ folder), so
`import greenpipe` stays free of Prefect. They are part of the installed
package so that every process that runs their tasks (a Dask scheduler and its workers, a
Prefect worker) imports them from the environment, whatever its working directory.
"""
