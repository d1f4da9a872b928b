"""Hugging Face checkpoint to GGUF conversion (no Qt)."""
