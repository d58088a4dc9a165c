"""Training stages: each couples a model, its data and its evaluation for the shared loop."""
