"""Your own character: landmark accuracy and rig/export cost on heads generated from the bundled one.

For each variant (Z-up cm, mm, reordered, remeshed to ~48k vertices, no eyeballs, welded lips, mouth
bag, mouth bag with eye sockets) it reports the largest landmark error against the construction points (mm) and the time to
analyse the head and build its basis (detection + fields), against the baseline of building the
fields alone from known landmarks on the same mesh (the old bundled-character path), side by side.
Then the cost and error of the exports: PCA targets for offsets outside the basis, the NNLS solve.

    .venv/bin/python benchmarks/character_rig.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import head_variants as hv  # noqa: E402
from talking_faces.head_landmarks import analyse_head  # noqa: E402
from talking_faces.identity import Identity  # noqa: E402
from talking_faces.rig import rig_offsets  # noqa: E402
from talking_faces.solve import fit_weights, pca_to_tolerance  # noqa: E402

TIGHT = ("mouth_corner_l", "upper_lip_centre", "lower_lip_centre", "eye_centre_l", "eye_inner_l", "eye_outer_l",
         "nose_tip", "chin", "jaw_hinge_l")


def _timed(fn, repeats: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    v, f = hv.character()
    known = hv.known_points()
    bv, bf = hv.mouth_bag(v, f)
    sv, sf = hv.eye_sockets(bv, bf)
    rv, rf = hv.remesh(v, f)
    variants = {
        "z_up_cm": (hv.to_user(v, hv.Z_UP, 100.0), f), "mm": (hv.to_user(v, np.eye(3), 1000.0), f),
        "reordered": hv.reorder(v, f)[:2], "remeshed_z_up": (hv.to_user(rv, hv.Z_UP, 1.0), rf),
        "no_eyeballs": hv.without_eyeballs(v, f), "welded_lips": hv.welded_lips(v, f), "mouth_bag": (bv, bf),
        "bag_sockets_cm": (hv.to_user(sv, hv.Z_UP, 100.0), sf),
    }
    print(f"{'head':15s} {'V':>6s} {'frame':22s} {'tight max mm':>12s} {'all max mm':>10s} {'analyse+rig s (min/med)':>24s} {'rig only s':>11s} {'ratio':>6s}")
    for name, (vertices, faces) in variants.items():
        identity = Identity(vertices.astype(np.float32), faces, name)

        def full():
            analysis = analyse_head(identity)
            return analysis, rig_offsets(analysis.frame.to_canonical(identity.vertices), faces, analysis.landmarks, analysis.others)

        best, median, (analysis, _) = _timed(full, args.repeats)
        canonical = analysis.frame.to_canonical(identity.vertices)
        base_best, _, _ = _timed(lambda: rig_offsets(canonical, faces, analysis.landmarks, analysis.others), args.repeats)
        errors = {k: 1000 * np.linalg.norm(analysis.landmarks.points[k] - known[k]) for k in known}
        print(f"{name:15s} {len(vertices):6d} {analysis.frame.describe():22s} {max(errors[k] for k in TIGHT):12.2f} "
              f"{max(errors.values()):10.2f} {best:11.2f} / {median:5.2f}     {base_best:11.2f} {best / base_best:6.2f}")
    rng = np.random.default_rng(0)
    for frames in (75, 300):
        offsets = (np.einsum("tk,kvc->tvc", rng.normal(size=(frames, 12)), rng.normal(size=(12, len(v), 3)) * 2e-3)
                   + rng.normal(size=(frames, len(v), 3)) * 1e-5)
        best, median, (components, _, error) = _timed(lambda: pca_to_tolerance(offsets, 1e-4), 1)
        shapes = rng.normal(size=(32, len(v), 3)) * 1e-3
        nnls_best, _, (_, residual) = _timed(lambda: fit_weights(offsets, shapes), args.repeats)
        print(f"PCA of {frames} frames x {len(v)} vertices: {len(components)} components, max error {1000 * error:.4f} mm, {best:.2f} s; "
              f"NNLS onto 32 shapes: {nnls_best:.3f} s, mean RMS residual {1000 * residual.mean():.3f} mm")


if __name__ == "__main__":
    main()
