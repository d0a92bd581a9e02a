"""Procedural construction of the default character, a stylised mannequin head.

The skin is one deformed parametric grid: rows run from the crown (a pole) down to an open neck,
columns go round the head with column `N_COLS // 2` on the front midline. A lofted base shape comes
from three profile curves (front, side, back); facial relief (nose, brows, cheeks, lips, chin) is added
as smooth bumps; the mouth and the two eye openings are slits cut along grid rows (their rim
vertices duplicated, so each becomes a boundary loop) and then opened. The eyeballs are separate
spheres and the lids are wrapped onto them. Everything is a symmetric function of the grid, whose
columns are mirrored exactly, so the head is left/right symmetric by construction, and every landmark
is a vertex index or a construction point.

All lengths below are in millimetres; the result is in metres (FLAME's scale and axes).
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator

from .landmarks import Landmarks, jaw_hinges

N_COLS = 128  # even, so that both midlines are columns
N_ROWS = 88

# Loft profiles, one row per control point: t, front z, front y, side x, side y, side z, back z, back y.
# t = 0 is the crown, t = 1 the bottom of the neck.
PROFILES = np.array([
    [0.00, -12, 126, 0, 126, -12, -12, 126],
    [0.08, 26, 118, 42, 117, -13, -55, 116],
    [0.17, 46, 94, 68, 93, -13, -90, 90],
    [0.26, 56, 62, 78, 58, -11, -103, 50],
    [0.32, 58, 40, 79, 35, -10, -105, 25],
    [0.37, 54, 22, 78, 18, -10, -103, 5],
    [0.43, 56, 0, 75, 0, -10, -99, -15],
    [0.48, 58, -20, 72, -18, -8, -92, -35],
    [0.52, 60, -33, 68, -32, -6, -85, -48],
    [0.56, 59, -45, 64, -46, -5, -79, -60],
    [0.60, 59, -55, 60, -58, -4, -74, -70],
    [0.64, 55, -66, 59, -70, -4, -68, -80],
    [0.68, 59, -80, 55, -84, -6, -63, -92],
    [0.73, 47, -95, 51, -97, -12, -60, -104],
    [0.79, 22, -104, 48, -108, -20, -58, -115],
    [0.86, 10, -118, 48, -125, -24, -58, -130],
    [0.94, 12, -155, 54, -158, -26, -62, -160],
    [1.00, 22, -180, 68, -180, -28, -75, -185],
])

# Facial relief bumps along +z: x, y, sigma x, sigma y, height (mm). Bumps with x != 0 are mirrored.
BUMPS = np.array([
    [28, 37, 17, 6, 4.5],     # brow ridge
    [0, 31, 9, 7, 1.5],       # glabella
    [31, 20, 14, 11, -9.0],   # eye socket
    [47, 2, 13, 10, 5.0],     # cheekbone
    [33, -22, 14, 13, 3.0],   # cheek
    [0, -38.5, 14, 4.0, 5.5],   # upper lip
    [0, -52.5, 12, 4.5, 6.0],   # lower lip
    [0, -64, 12, 4, -2.0],    # labiomental fold
    [0, -79, 13, 8, 4.0],     # chin
    [26, -45, 5, 6, -3.0],    # mouth-corner recess
    [12, -14, 4.5, 4, 4.0],   # ala of the nose
    [62, 40, 10, 14, -2.5],   # temple
])
# Nose ridge: height (mm) along the midline and its half-width, as functions of y.
NOSE_Y = np.array([32, 18, 5, -4, -8, -13, -17, -22])
NOSE_HEIGHT = np.array([0, 1.5, 8, 17, 20, 15, 5, 0])
NOSE_WIDTH = np.array([5, 4.5, 4.5, 6, 7, 7, 6.5, 6])

# Mouth: slit at y = -45 mm with corners at |x| = 25 mm, lips parted by 2 x 0.9 mm, inner rim
# rolled 6 mm into the mouth.
MOUTH_Y, MOUTH_HALF_WIDTH, LIP_HALF_GAP, LIP_ROLL = -45.0, 25.0, 0.9, 6.0
# Eyes: eyeball centre (left eye; the right one is mirrored), radius, corners, lid opening.
EYE_CENTRE = np.array([31.0, 20.0, 25.0])
EYE_RADIUS = 12.5
EYE_INNER_X, EYE_OUTER_X = 20.5, 43.5
UPPER_LID_ANGLE, LOWER_LID_ANGLE, LID_GAP = 0.42, 0.32, 1.0  # lid opening (rad) over the eyeball
EAR_CENTRE, EAR_HEIGHT = np.array([2.0, -16.0]), 9.0  # ear: (y, z) of its centre, and how far it stands out


def _inverse_cdf(density: np.ndarray, grid: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Points of `grid` at the given quantiles of a sampled positive density."""
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
    return np.interp(quantiles, cdf / cdf[-1], grid)


def _column_angles() -> np.ndarray:
    """`(N_COLS,)` angles round the head, 0 on the front midline, +pi/2 on the subject's left.

    Columns are dense on the face; column i mirrors column (N_COLS - i) % N_COLS exactly.
    """
    grid = np.linspace(0.0, np.pi, 4001)
    density = 1.0 + 2.5 * np.exp(-((grid / 0.75) ** 2))
    half = _inverse_cdf(density, grid, np.linspace(0.0, 1.0, N_COLS // 2 + 1))
    return np.concatenate([-half[::-1][:-1], half[:-1]])  # from -pi up to just below +pi


def _row_params() -> np.ndarray:
    """`(N_ROWS,)` loft parameters t, dense round the eyes, nose and mouth."""
    grid = np.linspace(0.0, 1.0, 4001)
    density = (0.6 + 1.2 * np.exp(-(((grid - 0.45) / 0.13) ** 2))
               + 1.5 * np.exp(-(((grid - 0.37) / 0.02) ** 2)) + 2.5 * np.exp(-(((grid - 0.56) / 0.02) ** 2)))
    return _inverse_cdf(density, grid, np.linspace(0.0, 1.0, N_ROWS + 1))[1:]


def _smooth_sign(c: np.ndarray) -> np.ndarray:
    return np.tanh(c / 0.5)


def _base_surface(t: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Lofted head `(R, C, 3)` in mm at loft parameters `(R,)` and angles `(C,)`."""
    tk = PROFILES[:, 0]
    zf, yf, xs, ys, zs, zb, yb = (PchipInterpolator(tk, PROFILES[:, k])(t)[:, None] for k in range(1, 8))
    c, s = np.cos(phi)[None], np.sin(phi)[None]
    front, back = np.clip(c, 0, None) ** 2, np.clip(-c, 0, None) ** 2
    sign = _smooth_sign(c)
    depth = 0.5 * ((zf - zs) + (zs - zb)) + 0.5 * ((zf - zs) - (zs - zb)) * sign
    x = xs * s
    y = ys + (yf - ys) * front + (yb - ys) * back
    z = zs + depth * c
    return np.stack([x, y, z], axis=-1)


def _gauss(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def _relief(points: np.ndarray) -> np.ndarray:
    """Height of the facial relief along +z `(...,)` mm at base points `(..., 3)` mm."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    height = np.zeros_like(x)
    for cx, cy, sx, sy, h in BUMPS:
        height += h * _gauss(x, y, cx, cy, sx, sy)
        if cx:
            height += h * _gauss(x, y, -cx, cy, sx, sy)
    ridge = PchipInterpolator(NOSE_Y[::-1], NOSE_HEIGHT[::-1], extrapolate=False)(y)
    width = np.interp(y, NOSE_Y[::-1], NOSE_WIDTH[::-1])
    height += np.nan_to_num(ridge) * np.exp(-0.5 * (x / width) ** 2)
    front = np.clip((z - 5.0) / 25.0, 0.0, 1.0)  # the face only: nothing on the back of the head
    return height * front * front * (3 - 2 * front)


def _ears(points: np.ndarray) -> np.ndarray:
    """Outward (x) height `(...,)` mm of two stylised ears, a rim with a hollow, at base points `(..., 3)` mm."""
    y, z = points[..., 1], points[..., 2]
    rim = EAR_HEIGHT * np.exp(-0.5 * (((y - EAR_CENTRE[0]) / 15.0) ** 2 + ((z - EAR_CENTRE[1]) / 8.0) ** 2) ** 1.5)
    hollow = 0.45 * EAR_HEIGHT * np.exp(-0.5 * (((y - EAR_CENTRE[0] + 2) / 7.0) ** 2 + ((z - EAR_CENTRE[1] - 1) / 4.0) ** 2))
    return (rim - hollow) * _smoothstep(50.0, 65.0, np.abs(points[..., 0]))


def _grid_faces(n_rows: int) -> np.ndarray:
    """Triangles `(F, 3)` of the grid (see `_grid_index`) plus the crown fan round the pole, vertex 0.

    Quads are split along mirrored diagonals on the two halves so the triangulation is symmetric too.
    """
    j, i = np.meshgrid(np.arange(n_rows - 1), np.arange(N_COLS), indexing="ij")
    a = _grid_index(j, i)
    b = _grid_index(j, (i + 1) % N_COLS)
    c, d = a + N_COLS, b + N_COLS
    right = (i < N_COLS // 2)[..., None]
    tri1 = np.where(right, np.stack([a, c, d], -1), np.stack([a, c, b], -1))
    tri2 = np.where(right, np.stack([a, d, b], -1), np.stack([b, c, d], -1))
    quads = np.stack([tri1, tri2], axis=2).reshape(-1, 3)
    cols = np.arange(N_COLS)
    fan = np.stack([np.zeros(N_COLS, int), _grid_index(0, cols), _grid_index(0, (cols + 1) % N_COLS)], -1)
    return np.concatenate([fan, quads]).astype(np.int64)


def _cut_slit(faces: np.ndarray, row: int, cols: np.ndarray, new_first: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut the grid along `row` between the columns `cols[0]` and `cols[-1]` (the corners).

    Interior slit vertices get a duplicate (index `new_first + k`) used by the faces below the row,
    so the slit becomes a boundary loop. Returns the new faces and the duplicated grid indices.
    """
    inner = _grid_index(row, cols[1:-1])
    remap = np.arange(faces.max() + 1 + len(inner))
    remap[inner] = np.arange(new_first, new_first + len(inner))
    # A face lies below the slit when it uses a vertex of the next row in the slit's span.
    below = np.isin(faces, _grid_index(row + 1, cols)).any(axis=1)
    faces = faces.copy()
    faces[below] = remap[faces[below]]
    return faces, inner


def _grid_index(row: int, cols: np.ndarray) -> np.ndarray:
    """Vertex indices of grid vertices (row, cols); vertex 0 is the crown pole."""
    return 1 + row * N_COLS + np.asarray(cols)


def _uv_sphere(n_lat: int = 14, n_lon: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere `(V, 3)` with poles on +z and -z (the pupil pole faces forward), faces `(F, 3)`."""
    theta = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    ring = np.stack([np.sin(theta)[:, None] * np.cos(lon), np.sin(theta)[:, None] * np.sin(lon),
                     np.cos(theta)[:, None] * np.ones_like(lon)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, 0, 1]], ring, [[0, 0, -1]]])
    faces = []
    for k in range(n_lon):
        faces.append([0, 1 + k, 1 + (k + 1) % n_lon])
        for r in range(n_lat - 2):
            a, b = 1 + r * n_lon + k, 1 + r * n_lon + (k + 1) % n_lon
            faces += [[a, a + n_lon, b + n_lon], [a, b + n_lon, b]]
        last = 1 + (n_lat - 2) * n_lon
        faces.append([last + k, len(verts) - 1, last + (k + 1) % n_lon])
    return verts, np.asarray(faces, np.int64)


def _eyeball(centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eyeball vertices `(V, 3)` mm with a slight corneal bulge, and faces."""
    unit, faces = _uv_sphere()
    cornea = np.clip((unit[:, 2] - 0.85) / 0.15, 0, 1) ** 2 * 0.5  # stays inside the lids
    return centre + unit * (EYE_RADIUS + cornea)[:, None], faces


def _nearest_column(phi: np.ndarray, base_row: np.ndarray, x: float) -> int:
    """Column on the face whose base x is closest to `x`."""
    front = np.flatnonzero(np.cos(phi) > 0)
    return int(front[np.argmin(np.abs(base_row[front, 0] - x))])


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    u = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return u * u * (3 - 2 * u)


def _open_mouth(points: np.ndarray, side: np.ndarray, slit_y: float, corner_x: float) -> np.ndarray:
    """Part the lips and roll their inner rims into the mouth; `points (V, 3)` mm, `side (V,)` +1 above."""
    x, dy = np.abs(points[:, 0]), points[:, 1] - slit_y
    side = side * (points[:, 2] > 0)  # the face only, not the back of the head
    inside = np.clip(1 - (x / corner_x) ** 2, 0, 1)
    beyond = np.exp(-((np.clip(x - corner_x, 0, None) / 4.0) ** 2))
    out = points.copy()
    out[:, 1] += side * LIP_HALF_GAP * np.sqrt(inside) * np.exp(-((dy / 3.5) ** 2))
    out[:, 2] -= LIP_ROLL * (0.4 + 0.6 * inside) * beyond * np.exp(-((dy / 2.4) ** 2)) * (points[:, 2] > 0)
    return out


def _rotate_about_x(points: np.ndarray, centre: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rotate points `(V, 3)` about x-parallel axes through `centre (V, 3)` by `angles (V,)`; positive lifts the front."""
    rel = points - centre
    cos, sin = np.cos(angles), np.sin(angles)
    return centre + np.stack([rel[:, 0], rel[:, 1] * cos + rel[:, 2] * sin, -rel[:, 1] * sin + rel[:, 2] * cos], -1)


def _open_eyes(points: np.ndarray, side: np.ndarray, slit_y: float) -> np.ndarray:
    """Wrap the skin round the eyes onto the eyeballs, then open the slits by rotating the lids over them."""
    x, dy = np.abs(points[:, 0]), points[:, 1] - slit_y
    centre = EYE_CENTRE * np.stack([np.where(points[:, 0] < 0, -1.0, 1.0), np.ones(len(x)), np.ones(len(x))], -1)
    rel = points - centre
    e = np.sqrt(((x - EYE_CENTRE[0]) / 16.0) ** 2 + ((points[:, 1] - EYE_CENTRE[1]) / 11.0) ** 2)
    # Lids lie on a shell just outside the eyeball; round them the socket may not cut into it.
    # Pushing along z only keeps the front view of the eye opening as wide as the slit.
    on_ball = centre[:, 2] + np.sqrt(np.clip((EYE_RADIUS + LID_GAP) ** 2 - rel[:, 0] ** 2 - rel[:, 1] ** 2, 0, None))
    front = (rel[:, 2] > 0) & (e < 2.0)
    near = (1 - _smoothstep(0.5, 1.0, e)) * front
    out = points.copy()
    out[:, 2] = out[:, 2] * (1 - near) + on_ball * near
    out[:, 2] = np.where(front, np.maximum(out[:, 2], on_ball), out[:, 2])
    u = np.clip((x - EYE_INNER_X) / (EYE_OUTER_X - EYE_INNER_X), 0, 1)
    along = (1 - _smoothstep(1.5, 2.5, e)) * (rel[:, 2] > 0) * np.exp(-((np.clip(EYE_INNER_X - x, 0, None) / 3.0) ** 2) - ((np.clip(x - EYE_OUTER_X, 0, None) / 4.0) ** 2))
    rise = UPPER_LID_ANGLE * np.sin(np.pi * u ** 0.85) * np.exp(-((dy / 8.0) ** 2))
    drop = LOWER_LID_ANGLE * np.sin(np.pi * u ** 1.15) * np.exp(-((dy / 6.0) ** 2))
    return _rotate_about_x(out, centre, along * np.where(side > 0, rise, np.where(side < 0, -drop, 0.0)))


def build_default_head() -> tuple[np.ndarray, np.ndarray, Landmarks]:
    """The default character: vertices `(V, 3)` float32 m, faces `(F, 3)` int64, and its landmarks."""
    phi, t = _column_angles(), _row_params()
    base = _base_surface(t, phi)  # (R, C, 3)
    base[..., 2] += _relief(base)
    base[..., 0] += np.sign(base[..., 0]) * _ears(base)
    mid = N_COLS // 2
    pole = np.array([[0.0, PROFILES[0, 2], PROFILES[0, 1]]])
    grid = base.reshape(-1, 3)
    row_of = np.concatenate([[-1], np.repeat(np.arange(N_ROWS), N_COLS)])

    mouth_row = int(np.argmin(np.abs(base[:, mid, 1] - MOUTH_Y)))
    eye_row = int(np.argmin(np.abs(base[:, mid, 1] - EYE_CENTRE[1])))
    corner = _nearest_column(phi, base[mouth_row], MOUTH_HALF_WIDTH)
    eye_cols = np.arange(_nearest_column(phi, base[eye_row], EYE_INNER_X),
                         _nearest_column(phi, base[eye_row], EYE_OUTER_X) + 1)
    slits = {"mouth": (mouth_row, np.arange(N_COLS - corner, corner + 1)),
             "eye_l": (eye_row, eye_cols), "eye_r": (eye_row, N_COLS - eye_cols)}

    faces = _grid_faces(N_ROWS)
    points = [pole, grid]
    n = 1 + len(grid)
    rims = {}
    for name, (row, cols) in slits.items():
        faces, upper = _cut_slit(faces, row, cols, n)
        rims[name] = (_grid_index(row, cols[[0, -1]]), upper, np.arange(n, n + len(upper)))
        points.append(grid[upper - 1])
        row_of = np.concatenate([row_of, np.full(len(upper), N_ROWS + row)])  # below-copies of `row`
        n += len(upper)
    skin = np.concatenate(points)
    slit_row = np.where(row_of >= N_ROWS, row_of - N_ROWS, row_of)
    is_copy = row_of >= N_ROWS

    def side_of(row: int) -> np.ndarray:  # +1 above the slit row, -1 below; rim originals are above
        return np.where(slit_row < row, 1.0, np.where(slit_row > row, -1.0, np.where(is_copy, -1.0, 1.0)))

    skin = _open_mouth(skin, side_of(mouth_row), base[mouth_row, mid, 1], base[mouth_row, corner, 0])
    skin = _open_eyes(skin, side_of(eye_row), base[eye_row, mid, 1])

    eye_l, eye_faces = _eyeball(EYE_CENTRE)
    eye_r = eye_l * np.array([-1.0, 1.0, 1.0])
    first_l, first_r = len(skin), len(skin) + len(eye_l)
    vertices = np.concatenate([skin, eye_l, eye_r])
    faces = np.concatenate([faces, eye_faces + first_l, eye_faces[:, ::-1] + first_r])
    landmarks = _landmarks(vertices, rims, first_l, first_r, len(eye_l))
    landmarks = Landmarks({k: v / 1000.0 for k, v in landmarks.points.items()}, landmarks.indices)
    return (vertices / 1000.0).astype(np.float32), faces, landmarks


def _landmarks(vertices: np.ndarray, rims: dict, first_l: int, first_r: int, eye_size: int) -> Landmarks:
    """Landmarks (in mm) of the built head, from its slits and construction points."""
    (corner_r, corner_l), upper, lower = rims["mouth"]
    mid = len(upper) // 2  # the slit is symmetric, so its middle vertex is on the midline
    upper_lip = np.concatenate([[corner_r], upper, [corner_l]])
    lower_lip = np.concatenate([[corner_r], lower, [corner_l]])
    indices = {"inner_lip_loop": np.concatenate([upper_lip, lower_lip[-2:0:-1]]),
               "upper_lip": upper_lip, "lower_lip": lower_lip,
               "eyeball_l": np.arange(first_l, first_l + eye_size), "eyeball_r": np.arange(first_r, first_r + eye_size)}
    points = {"mouth_corner_l": vertices[corner_l], "mouth_corner_r": vertices[corner_r],
              "upper_lip_centre": vertices[upper[mid]], "lower_lip_centre": vertices[lower[mid]]}
    skin = vertices[:first_l]
    face = skin[:, 2] > 20.0

    def nearest(x: float, y: float) -> np.ndarray:
        candidates = np.flatnonzero(face)
        return skin[candidates[np.argmin(np.hypot(skin[candidates, 0] - x, skin[candidates, 1] - y))]]

    mirror = np.array([-1.0, 1.0, 1.0])
    for s, sign in (("l", 1.0), ("r", -1.0)):
        (inner, outer), up, low = rims[f"eye_{s}"]
        indices[f"upper_lid_{s}"] = np.concatenate([[inner], up, [outer]])
        indices[f"lower_lid_{s}"] = np.concatenate([[inner], low, [outer]])
        points[f"eye_centre_{s}"] = EYE_CENTRE * (1.0 if s == "l" else mirror)
        points[f"eye_inner_{s}"], points[f"eye_outer_{s}"] = vertices[inner], vertices[outer]
        for name, (x, y) in {"brow_inner": (15, 45), "brow_mid": (30, 49), "brow_outer": (45, 45), "ala": (13, -14)}.items():
            points[f"{name}_{s}"] = nearest(sign * x, y)
    midline = np.flatnonzero(face & (np.abs(skin[:, 0]) < 1e-6))
    points["nose_tip"] = skin[midline[np.argmax(skin[midline, 2])]]
    points["chin"] = nearest(0.0, -80.0)
    points["jaw_hinge_l"], points["jaw_hinge_r"] = jaw_hinges(skin, points["eye_centre_l"], points["eye_centre_r"])
    return Landmarks(points, indices)
