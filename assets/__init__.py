"""Data the project made itself: the default character, its landmarks, and a sample speech file."""
