import math
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from talking_faces import gl
from talking_faces.appearance import SKIN
from talking_faces.errors import TalkingFacesError
from talking_faces.render import (
    BACKGROUND,
    AMBIENT,
    FIELD_OF_VIEW,
    GAMMA,
    LIGHTS,
    FaceRenderer,
    camera_pose,
    facing_camera,
    shade_vertices,
    smooth_normals,
    vertex_normals_operator,
)

SIZE = 128


@pytest.fixture(scope="module")
def sphere():
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
    return np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int64)


@pytest.fixture(scope="module")
def sphere_renderer(sphere):
    with FaceRenderer(*sphere, size=SIZE) as renderer:
        yield renderer


def foreground(image: np.ndarray) -> np.ndarray:
    background = np.round(np.array(BACKGROUND) * 255)
    return (np.abs(image.astype(float) - background) > 3).any(axis=2)


def focal_pixels() -> float:
    return SIZE / 2 / math.tan(FIELD_OF_VIEW / 2)


def test_smooth_normals_of_a_sphere_point_outwards(sphere):
    vertices, faces = sphere
    normals = smooth_normals(vertices, faces, vertex_normals_operator(faces, len(vertices)))
    radial = vertices / np.linalg.norm(vertices, axis=1, keepdims=True)
    assert normals.shape == vertices.shape and normals.dtype == np.float32
    assert np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-5)
    assert (normals * radial).sum(axis=1).min() > 0.999


def test_camera_frames_the_bounds_with_margin(shared_fixture):
    flame = trimesh.load(shared_fixture("flame_sample.ply"), process=False)
    for vertices in (np.asarray(flame.vertices), np.random.default_rng(0).uniform(-0.1, 0.1, (500, 3))):
        pose, distance = camera_pose(vertices)
        assert np.allclose(pose[:3, :3], np.eye(3))  # looks down -z, y up
        relative = vertices - pose[:3, 3]
        depth = -relative[:, 2]
        assert depth.min() > 0
        pixels = relative[:, :2] / depth[:, None] * focal_pixels()  # offsets from the image centre
        assert 0.3 * SIZE < np.abs(pixels).max() < 0.5 * SIZE


def test_shading_follows_the_lights():
    key = np.array(LIGHTS[0][0]) / np.linalg.norm(LIGHTS[0][0])
    normals = np.array([key, -key, [0.0, 0.0, 1.0]], dtype=np.float32)
    unlit = np.array([[0.0, -0.98, -0.196]], dtype=np.float32)  # down and back: no light reaches it
    colours = shade_vertices(np.concatenate([normals, unlit]))
    assert colours.shape == (4, 4) and colours.dtype == np.float32 and np.all(colours[:, 3] == 1)
    assert np.all((colours >= 0) & (colours <= 1))
    assert colours[0, :3].sum() > colours[2, :3].sum() > colours[1, :3].sum()  # towards key > frontal > away
    assert np.allclose(colours[3, :3], (SKIN * AMBIENT) ** (1 / GAMMA), atol=1e-6)


def test_inverted_winding_is_flipped(sphere):
    vertices, faces = sphere
    assert facing_camera(vertices, faces) is faces
    assert np.array_equal(facing_camera(vertices, faces[:, ::-1]), faces)


def test_sphere_silhouette_matches_the_camera_model(sphere, sphere_renderer):
    vertices, _ = sphere
    image = sphere_renderer.render(vertices)
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    mask = foreground(image)
    _, distance = camera_pose(vertices)
    radius_pixels = math.tan(math.asin(0.1 / distance)) * focal_pixels()
    assert mask.sum() == pytest.approx(math.pi * radius_pixels**2, rel=0.04)
    rows, cols = np.nonzero(mask)
    assert rows.mean() == pytest.approx(SIZE / 2 - 0.5, abs=0.5) and cols.mean() == pytest.approx(SIZE / 2 - 0.5, abs=0.5)
    lit = image.astype(float).sum(axis=2)
    left, right = lit[:, : SIZE // 2][mask[:, : SIZE // 2]], lit[:, SIZE // 2 :][mask[:, SIZE // 2 :]]
    assert left.mean() > right.mean() + 20  # the key light comes from the viewer's left
    centre = image[SIZE // 2, SIZE // 2].astype(int)
    assert centre[0] > centre[1] > centre[2]  # skin tone: red > green > blue


def test_frames_follow_the_vertices(sphere, sphere_renderer):
    vertices, _ = sphere
    _, distance = camera_pose(vertices)
    step = 0.02
    expected = step / distance * focal_pixels()
    base = np.argwhere(foreground(sphere_renderer.render(vertices))).mean(axis=0)
    moved = np.argwhere(foreground(sphere_renderer.render(vertices + [step, step, 0]))).mean(axis=0)
    assert moved[1] - base[1] == pytest.approx(expected, abs=1.0)  # +x is to the right
    assert base[0] - moved[0] == pytest.approx(expected, abs=1.0)  # +y is up
    again = np.argwhere(foreground(sphere_renderer.render(vertices))).mean(axis=0)
    assert np.allclose(again, base)


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def test_shader_cache_hits_and_memory_stays_flat(sphere, sphere_renderer):
    vertices, _ = sphere
    sphere_renderer.render(vertices)
    cache = sphere_renderer._renderer._renderer._program_cache._program_cache
    programs = len(cache)
    start = _rss_mb() if Path("/proc/self/statm").exists() else None
    for i in range(60):
        sphere_renderer.render(vertices * (1 + 0.01 * math.sin(i)))
    assert len(cache) == programs <= 2  # without the OSMesa fix: one more program per frame
    if start is not None:
        assert _rss_mb() - start < 30  # without the fix: about 3 MB per frame, 180 MB here


def test_backend_is_chosen_once_per_process():
    chosen = gl.use_backend("auto")
    assert gl.use_backend(chosen) == chosen == gl.use_backend("AUTO")
    other = "egl" if chosen == "osmesa" else "osmesa"
    with pytest.raises(TalkingFacesError, match=f"already in use.*cannot switch to {other}"):
        gl.use_backend(other)
    with pytest.raises(TalkingFacesError, match="use auto, osmesa or egl"):
        gl.use_backend("vulkan")


def test_missing_gl_libraries_name_the_packages(monkeypatch):
    monkeypatch.setattr(gl, "_library_available", lambda name: False)
    with pytest.raises(TalkingFacesError, match="apt-get install libosmesa6.*libegl1 libgl1-mesa-dri"):
        gl._auto_backend()
    monkeypatch.delitem(sys.modules, "OpenGL", raising=False)  # as in a fresh process
    with pytest.raises(TalkingFacesError, match="egl needs libEGL.*apt-get install libegl1 libgl1-mesa-dri"):
        gl._activate("egl")
    with pytest.raises(TalkingFacesError, match="osmesa needs libOSMesa.*apt-get install libosmesa6"):
        gl._activate("osmesa")


def test_mesh_without_faces_is_a_clear_error(sphere):
    with pytest.raises(TalkingFacesError, match="no faces"):
        FaceRenderer(sphere[0], None, size=SIZE)


def test_the_other_backend_draws_the_same_image(sphere, sphere_renderer, tmp_path):
    """EGL and OSMesa (no OSMesa fixes under EGL) give the same frame; each needs its own process."""
    import subprocess

    other = "egl" if sphere_renderer.backend == "osmesa" else "osmesa"
    np.savez(tmp_path / "mesh.npz", vertices=sphere[0], faces=sphere[1])
    script = (
        "import sys, numpy as np\nfrom talking_faces.render import FaceRenderer\n"
        "mesh = np.load(sys.argv[1])\nrenderer = FaceRenderer(mesh['vertices'], mesh['faces'], size=int(sys.argv[3]), gl=sys.argv[2])\n"
        "np.save(sys.argv[4], renderer.render(mesh['vertices']))\n"
    )
    args = [sys.executable, "-c", script, str(tmp_path / "mesh.npz"), other, str(SIZE), str(tmp_path / "frame.npy")]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if "apt-get install" in result.stderr:
        pytest.skip(f"{other} is not installed here")
    assert result.returncode == 0, result.stderr
    theirs, ours = np.load(tmp_path / "frame.npy"), sphere_renderer.render(sphere[0])
    assert np.abs(theirs.astype(int) - ours).mean() < 1.0  # EGL multisamples the edges
    assert abs(int(foreground(theirs).sum()) - int(foreground(ours).sum())) < 0.02 * foreground(ours).sum()


def test_moving_region_shades_like_the_whole_mesh(sphere, sphere_renderer):
    """Frames that move only some vertices get the vertex buffer of a full `prepare`, from the region around
    them; a frame that moves a vertex outside the region is prepared whole."""
    vertices = sphere[0]
    moving = vertices[:, 1] > 0.3 * np.abs(vertices[:, 1]).max()  # the top cap
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(4):
        frame = vertices.copy()
        frame[moving] += rng.normal(scale=0.01, size=(int(moving.sum()), 3)).astype(np.float32)
        frames.append(frame)
    outside = frames[0].copy()
    outside[np.flatnonzero(~moving)[0]] += 0.02
    chunks = [(0, np.stack(frames + [outside]))]
    region = sphere_renderer._moving_region(moving)
    assert region is not None and 0 < region.vertices.size < vertices.shape[0]
    for frame in frames + [outside]:
        np.testing.assert_allclose(region.prepare(frame), sphere_renderer.prepare(frame), atol=1e-6)
    whole = [sphere_renderer.draw(sphere_renderer.prepare(frame), alpha=True) for frame in frames + [outside]]
    fast = list(sphere_renderer.render_chunks(chunks, moving))
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(whole, fast))
    assert sphere_renderer._moving_region(np.ones(vertices.shape[0], bool)) is None  # nothing to save


def test_render_loop_runs_blas_on_one_thread(sphere, sphere_renderer):
    """While `render_chunks` runs, numpy's BLAS has one thread (its spinning workers would take the
    rasteriser's cores); afterwards the user's setting is back."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    if not blas_threads():
        pytest.skip("numpy is not linked to a BLAS that threadpoolctl can control")
    frames = np.stack([sphere[0]] * 3)
    with threadpool_limits(limits=2, user_api="blas"):  # as on a 2-core machine (clamped to this one's cores)
        before = blas_threads()
        during = [blas_threads() for _ in sphere_renderer.render_chunks([(0, frames)])]
        after = blas_threads()
    assert during == [{1}] * 3
    assert after == before
