"""Reading and writing weights and model files, without torch."""
