"""supernets."""
