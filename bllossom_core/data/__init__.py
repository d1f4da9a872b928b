"""Data files shipped with bllossom_core (the model catalog)."""
