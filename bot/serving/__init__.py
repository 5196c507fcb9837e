"""Model serving and training runs: the model process, batching, the training worker."""
