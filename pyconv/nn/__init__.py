"""Modules mirroring torch.nn, loading torch state dicts as they are."""
