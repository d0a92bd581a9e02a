"""Rebuild the default character's assets (deterministic): assets/default_head.npz and its landmarks JSON.

Usage: python scripts/build_character.py [--out assets]
"""

import argparse
from pathlib import Path

import numpy as np

from talking_faces.character import LANDMARKS_FILE, MESH_FILE
from talking_faces.character_build import build_default_head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets")
    out = parser.parse_args().out
    vertices, faces, landmarks = build_default_head()
    np.savez_compressed(out / MESH_FILE, vertices=vertices, faces=faces)
    (out / LANDMARKS_FILE).write_text(landmarks.to_json() + "\n")
    print(f"Wrote {out / MESH_FILE} ({len(vertices)} vertices, {len(faces)} faces) and {out / LANDMARKS_FILE}")


if __name__ == "__main__":
    main()
