"""crowdbridge service: domain, storage, numerics, training, API and CLI."""
