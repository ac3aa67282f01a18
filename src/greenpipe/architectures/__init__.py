"""Model architectures as framework-neutral layer graphs (`graph.Graph`), built by `zoo`.

Each backend turns a graph into its own model (a torch module, a Keras model), so the same
architecture has the same layers and parameter count in every framework, and structured
pruning works on the graph once for all of them. A user's own model (`custom`) is a
function in a file of the repo that returns a framework model, or a graph.
"""
