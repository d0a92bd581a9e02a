"""Evaluation of speech-driven face animation: metrics, datasets, regions and the runner."""
