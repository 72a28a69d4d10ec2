"""Speed benchmarks of the local backend against sentence-transformers and the model card recipe."""
