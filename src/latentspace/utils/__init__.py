"""Small shared pieces every layer may use: atomic files, device choice, progress reporting."""
