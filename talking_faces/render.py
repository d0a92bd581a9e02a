"""Offscreen face renderer: one pyrender scene and GL context for every frame of an animation."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .appearance import SKIN
from .errors import TalkingFacesError
from .gl import APT_PACKAGES, use_backend
from .threads import prefetch

if TYPE_CHECKING:
    import scipy.sparse

# Vertical field of view: a portrait lens, close to the upstream demo's 19 degrees.
FIELD_OF_VIEW = math.radians(20.0)
FRAME_MARGIN = 1.1  # room around the mesh for jaw drops
BACKGROUND = (0.17, 0.18, 0.21)
INTERIOR = (34 / 255, 18 / 255, 18 / 255)  # sRGB of the inside of the mouth (`set_interior`)
BACKDROP_DEPTH = 0.995  # a backdrop lies at this fraction of the far clip distance
# (direction towards the light, intensity): key upper left, fill right and low, rim from behind above.
LIGHTS = (
    ((-0.65, 0.45, 0.60), 2.6),
    ((0.80, -0.05, 0.60), 0.45),
    ((0.25, 0.70, -0.65), 1.5),
)
AMBIENT = 0.08
SPECULAR, SHININESS = 0.04, 16  # a weak, broad highlight (matte skin); SHININESS a power of 2
GAMMA = 2.2
PREFETCH_FRAMES = 4  # frames shaded ahead of the draw


def vertex_normals_operator(faces: np.ndarray, num_vertices: int) -> scipy.sparse.csr_matrix:
    """Sparse `(V, F)` incidence matrix: `A @ face_vectors` sums each vertex's adjacent faces."""
    import scipy.sparse  # here, not at import: `talkface render` checks its options before loading scipy

    rows = faces.reshape(-1)
    cols = np.repeat(np.arange(faces.shape[0]), 3)
    data = np.ones(rows.shape[0], dtype=np.float32)
    return scipy.sparse.csr_matrix((data, (rows, cols)), shape=(num_vertices, faces.shape[0]))


def _face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """`(F, 3)` face normals of length twice the face's area (so that larger faces weigh more)."""
    corners = np.take(vertices, faces, axis=0)  # (F, 3, 3); np.take is 4x faster than fancy indexing here
    return np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    length = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))[:, None]
    return (vectors / np.maximum(length, 1e-20)).astype(np.float32, copy=False)


def smooth_normals(vertices: np.ndarray, faces: np.ndarray, incidence: scipy.sparse.csr_matrix) -> np.ndarray:
    """Area-weighted unit vertex normals `(V, 3)` float32 of `(V, 3)` vertices."""
    return _unit_rows(incidence @ _face_normals(vertices, faces))


def facing_camera(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """`(F, 3)` faces, reversed if they wind clockwise as seen from +z (back-face culling would hide them).

    Judged on the frontmost fifth of the faces (nose, forehead, cheeks), whose normals point to +z.
    """
    normals_z = _face_normals(vertices, faces)[:, 2]
    depth = vertices[faces, 2].mean(axis=1)
    front = depth >= np.quantile(depth, 0.8)
    return faces if normals_z[front].sum() >= 0 else np.ascontiguousarray(faces[:, ::-1])


def camera_pose(vertices: np.ndarray, yfov: float = FIELD_OF_VIEW) -> tuple[np.ndarray, float]:
    """Camera looking down -z at the bounding box of `(V, 3)` vertices (face towards +z, y up).

    Returns the `(4, 4)` camera-to-world pose and the distance from the camera to the box centre.
    """
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    centre, extent = (low + high) / 2, high - low
    half = FRAME_MARGIN * max(extent[0], extent[1]) / 2
    distance = half / math.tan(yfov / 2) + extent[2] / 2
    pose = np.eye(4)
    pose[:3, 3] = centre + np.array([0.0, 0.0, distance])
    return pose, float(distance)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


@dataclass(frozen=True)
class Lighting:
    """Directional lights fixed to the camera, and ambient light.

    Attributes:
        directions: `(L, 3)` unit vectors towards each light (camera frame: +z towards the viewer).
        intensities: `(L,)` radiant intensity of each light.
        ambient: ambient term added to every vertex's diffuse factor.
        viewer: `(3,)` unit vector towards the viewer, in the frame of `directions`.
    """

    directions: np.ndarray
    intensities: np.ndarray
    ambient: float = AMBIENT
    viewer: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0], dtype=np.float32))

    @classmethod
    def from_pairs(cls, lights: tuple[tuple[tuple[float, float, float], float], ...], ambient: float = AMBIENT) -> Lighting:
        """Lights given as `((towards x, y, z), intensity)` pairs; the directions need not be unit."""
        directions = _unit(np.array([towards for towards, _ in lights], dtype=np.float32))
        return cls(directions, np.array([intensity for _, intensity in lights], dtype=np.float32), float(ambient))

    @property
    def halfway(self) -> np.ndarray:
        """`(L, 3)` Blinn-Phong halfway vectors: the camera looks down -z from far away (the face spans
        about 20 degrees), so every vertex sees it along `viewer` and the halfway vectors are constants."""
        return _unit(self.directions + self.viewer)

    def turned(self, rotation: np.ndarray) -> Lighting:
        """These lights in the frame of a mesh that the `(3, 3)` rotation turns into the camera's frame:
        shading its unturned normals with them equals shading its turned normals with these."""
        turn = np.asarray(rotation, dtype=np.float32)
        return Lighting(self.directions @ turn, self.intensities, self.ambient, self.viewer @ turn)


DEFAULT_LIGHTING = Lighting.from_pairs(LIGHTS)


def shade_vertices(normals: np.ndarray, albedo: np.ndarray = SKIN, lighting: Lighting = DEFAULT_LIGHTING) -> np.ndarray:
    """Lit sRGB colours `(V, 4)` float32 (alpha 1) of vertices with unit `(V, 3)` normals.

    `albedo` is the linear-RGB base colour, `(3,)` for the whole mesh or `(V, 3)` per vertex.

    Lambert diffuse plus a Blinn-Phong highlight for each light of `lighting`, and ambient, in linear
    RGB, then gamma-encoded. The GPU interpolates these colours across triangles (Gouraud shading): on
    a CPU rasteriser this is about 5 times faster than pyrender's per-pixel PBR shader.
    """
    lambert = np.maximum(normals @ lighting.directions.T, 0.0)  # (V, L)
    highlight = np.maximum(normals @ lighting.halfway.T, 0.0)
    for _ in range(int(math.log2(SHININESS))):  # highlight ** SHININESS, by squaring
        highlight *= highlight
    highlight *= lambert > 0
    diffuse = lighting.ambient + lambert @ (lighting.intensities / math.pi)
    linear = albedo * diffuse[:, None] + (SPECULAR * highlight @ lighting.intensities)[:, None]
    colours = np.ones((normals.shape[0], 4), dtype=np.float32)
    colours[:, :3] = np.clip(linear, 0.0, 1.0) ** (1 / GAMMA)
    return colours


def clip_range(vertices: np.ndarray, distance: float) -> tuple[float, float]:
    """Near and far clip distances for a camera `distance` from the centre of `(V, 3)` vertices."""
    extent = float(np.ptp(vertices, axis=0).max())
    return max(distance - 2 * extent, distance / 20), distance + 2 * extent


def build_scene(neutral: np.ndarray):
    """A pyrender scene with the camera framed on `(V, 3)` neutral vertices, no mesh and no lights."""
    import pyrender

    scene = pyrender.Scene(bg_color=(*BACKGROUND, 1.0))
    pose, distance = camera_pose(neutral)
    near, far = clip_range(neutral, distance)
    scene.add(pyrender.PerspectiveCamera(yfov=FIELD_OF_VIEW, aspectRatio=1.0, znear=near, zfar=far), pose=pose)
    return scene


def project_points(points: np.ndarray, camera_to_world: np.ndarray, size: int, yfov: float = FIELD_OF_VIEW) -> np.ndarray:
    """Pixel coordinates `(n, 2)` (x right, y down, pixel centres at .5) of `(n, 3)` world points
    seen by a square pinhole camera with pose `camera_to_world (4, 4)` looking down its -z."""
    world_to_camera = np.linalg.inv(camera_to_world)
    local = points @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]
    focal = 0.5 * size / math.tan(yfov / 2)  # pixels
    x = 0.5 * size + focal * local[:, 0] / -local[:, 2]
    y = 0.5 * size - focal * local[:, 1] / -local[:, 2]
    return np.stack([x, y], axis=1)


@dataclass(frozen=True)
class _MovingRegion:
    """`FaceRenderer.prepare` for frames whose `still` vertices stay at the renderer's neutral: positions,
    normals and colours are recomputed for `vertices` (the moving ones and their neighbours) only."""

    renderer: FaceRenderer
    still: np.ndarray  # (s,) indices of the vertices that must stay at the neutral
    still_neutral: np.ndarray  # (s, 3) their neutral positions, as given
    vertices: np.ndarray  # (m,) indices
    faces: np.ndarray  # (f, 3) faces touching a moving vertex, indices into `vertices`
    incidence: scipy.sparse.csr_matrix  # (m, f)
    rest_normals: np.ndarray  # (m, 3) area-weighted normal sums of the still faces at `vertices`
    albedo: np.ndarray  # (3,) or (m, 3)

    def prepare(self, vertices: np.ndarray) -> np.ndarray:
        """`FaceRenderer.prepare(vertices)`, computed on the region when the still vertices did not move."""
        renderer = self.renderer
        if not np.array_equal(np.take(vertices, self.still, axis=0), self.still_neutral):
            return renderer.prepare(vertices)
        positions = np.ascontiguousarray(renderer._turned(vertices[self.vertices]), dtype=np.float32)
        vertex_data = renderer._rest.copy()
        vertex_data[self.vertices, :3] = positions
        normals = _unit_rows(self.incidence @ _face_normals(positions, self.faces) + self.rest_normals)
        vertex_data[self.vertices, 3:] = shade_vertices(normals, self.albedo, renderer._lighting)
        return vertex_data


class FaceRenderer:
    """Renders frames of one mesh topology into `(size, size, 3)` uint8 RGB images.

    The GL context, scene, camera and mesh are made once; each frame only overwrites the mesh's
    vertex buffer with new positions and lit colours. The camera is framed on `neutral`, so all
    frames share one view (`frame` re-aims it, e.g. for another identity of the same topology).
    """

    def __init__(
        self, neutral: np.ndarray, faces: np.ndarray | None, size: int = 512, gl: str = "auto",
        albedo: np.ndarray | None = None, view: np.ndarray | None = None,
    ) -> None:
        """`albedo`: `(V, 3)` linear-RGB base colours (talking_faces.appearance); plain skin when None.
        `view`: `(3, 3)` rotation that turns the mesh upright, facing +z, for the camera (None: as it is)."""
        if faces is None or len(faces) == 0:
            raise TalkingFacesError("The identity has no faces to render; give a mesh file with triangles (OBJ, PLY or NPZ).")
        self.backend = use_backend(gl)
        import pyrender
        from OpenGL import GL

        self._gl = GL
        self._view = None if view is None else np.asarray(view, dtype=np.float32)
        upright = self._turned(neutral)
        self.size = size
        self._flags = pyrender.RenderFlags.FLAT  # unlit shader: colours come lit from shade_vertices
        self._faces = facing_camera(upright, np.ascontiguousarray(faces, dtype=np.int64))
        self._incidence = vertex_normals_operator(self._faces, neutral.shape[0])
        self._albedo = SKIN if albedo is None else np.asarray(albedo, dtype=np.float32)
        self._lighting = DEFAULT_LIGHTING
        self._scene = build_scene(upright)
        vertex_data = self.prepare(neutral)
        self._primitive = pyrender.Primitive(
            positions=vertex_data[:, :3].copy(), color_0=vertex_data[:, 3:].copy(),
            indices=self._faces.astype(np.uint32), material=pyrender.MetallicRoughnessMaterial(baseColorFactor=(1.0, 1.0, 1.0, 1.0)),
        )
        self._node = self._scene.add(pyrender.Mesh([self._primitive]))
        self._pose: np.ndarray | None = None  # render's pose of the mesh node; None: at rest
        self._rest = vertex_data
        self._neutral = np.array(neutral, dtype=np.float32)
        # Drawn with the face, in its vertex buffer after its V vertices (one draw call; `_rebuild`):
        self._interior: np.ndarray | None = None  # (n, 7) set_interior's polygon, mesh frame
        self._backdrop: np.ndarray | None = None  # (rows * cols, 7) set_background's grid; positions per draw
        self._backdrop_grid: tuple[int, int] | None = None
        self._backdrop_shown = False
        self._renderer = None
        try:
            self._renderer = pyrender.OffscreenRenderer(size, size)
        except Exception as exc:  # no usable GL driver: PyOpenGL and EGL raise many types
            raise TalkingFacesError(
                f"Cannot create an OpenGL context with {self.backend} ({exc.__class__.__name__}: {exc}); "
                f"run `sudo apt-get install {APT_PACKAGES[self.backend]}` or try the other backend (gl osmesa|egl)."
            ) from None
        self._draw()  # uploads the mesh and compiles the shaders, so that frames only overwrite its buffer

    def render(
        self, vertices: np.ndarray, *, albedo: np.ndarray | None = None, lighting: Lighting | None = None,
        pose: np.ndarray | None = None,
    ) -> np.ndarray:
        """One frame of `(V, 3)` vertices as a `(size, size, 3)` uint8 RGB image.

        Optional, for this frame only: `albedo` `(3,)` or `(V, 3)` linear RGB, `lighting`, and `pose`:
        a `(4, 4)` rigid transform (rotation and translation) of the (upright) mesh, applied by GL, with
        the lights kept fixed to the camera. Without them the frame looks as the renderer was made.
        """
        return self.draw(self.prepare(vertices, albedo, lighting, pose), pose)

    def set_background(self, colours: np.ndarray | tuple[float, float, float] = BACKGROUND) -> None:
        """What later frames show behind the face: an sRGB colour `(3,)` in [0, 1], or `(h, w, 3)` colours
        (h, w >= 2) at a grid spanning the frame from its top-left to its bottom-right corner, blended
        linearly between grid points by GL (a backdrop just inside the far clip plane)."""
        colours = np.asarray(colours, dtype=np.float32)
        if colours.ndim == 1:
            self._scene.bg_color = (*colours, 1.0)
            self._backdrop_shown = False  # once made, the backdrop stays, collapsed: rebuilding costs a draw
            return
        rows, cols = colours.shape[:2]
        if rows < 2 or cols < 2:
            raise TalkingFacesError(f"A background grid of {rows} x {cols} colours; give at least 2 x 2, or one colour.")
        if self._backdrop_grid != (rows, cols):
            self._backdrop_grid = (rows, cols)
            self._backdrop = np.ones((rows * cols, 7), dtype=np.float32)
            self._rebuild()
        self._backdrop[:, 3:6] = colours.reshape(-1, 3)
        self._backdrop_shown = True

    def set_interior(self, corners: np.ndarray | None) -> None:
        """Show a dark flat convex polygon (`INTERIOR`) with `(n, 3)` corners, in the mesh's coordinates
        (in order around it, counter-clockwise seen from the camera), as the inside of the mouth: placed
        within the head behind the lips, it is seen only through the opening of the mouth, and moves
        with `render`'s pose. None hides it."""
        if corners is None:
            if self._interior is not None:
                self._interior = None
                self._rebuild()
            return
        count = None if self._interior is None else len(self._interior)
        self._interior = np.empty((len(corners), 7), dtype=np.float32)
        self._interior[:, :3] = self._turned(np.asarray(corners, dtype=np.float32))
        self._interior[:, 3:6], self._interior[:, 6] = INTERIOR, 1.0
        if count != len(corners):
            self._rebuild()

    def render_chunks(self, chunks: Iterable[tuple[int, np.ndarray]], moving: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """`(size, size, 4)` uint8 RGBX images (the fourth byte 255) of every frame of `(start, (n, V, 3))`
        chunks, in order: the GL buffer's own layout, read back 6x faster than RGB (0.06 against 0.4 ms at 512²).

        The chunks are produced and each frame's normals and shading computed on a second thread,
        up to PREFETCH_FRAMES ahead, while this thread draws. `moving`: `(V,)` bool, the vertices that
        may move (those with a non-zero AU basis offset); the others are checked in every frame to be at
        the renderer's neutral, and then only the region around the moving ones is shaded anew (half
        the default character: its back, ears and neck never move).
        """
        from threadpoolctl import threadpool_limits

        region = None if moving is None else self._moving_region(np.asarray(moving, dtype=bool))
        prepare = self.prepare if region is None else region.prepare
        prepared = (prepare(vertices) for _, chunk in chunks for vertices in chunk)
        # One BLAS thread while the loop runs: OpenBLAS's workers spin between the small products of
        # composition and shading, taking about 2 ms of CPU a frame from the rasteriser (render_speed.py).
        with threadpool_limits(limits=1, user_api="blas"), closing(prefetch(prepared, PREFETCH_FRAMES, name="talkface-shading")) as ready:
            for vertex_data in ready:
                yield self.draw(vertex_data, alpha=True)

    def prepare(
        self, vertices: np.ndarray, albedo: np.ndarray | None = None, lighting: Lighting | None = None,
        pose: np.ndarray | None = None,
    ) -> np.ndarray:
        """pyrender's interleaved vertex buffer `(V, 7)` float32 (position, lit RGBA) for `(V, 3)` vertices.

        Pure numpy, no GL: safe to run on another thread than `draw`. `albedo` and `lighting`
        replace the renderer's own for this frame; with the `pose` that `draw` will be given, the
        lights are turned into the mesh's frame so that they stay fixed to the camera.
        """
        positions = np.ascontiguousarray(self._turned(vertices), dtype=np.float32)
        vertex_data = np.empty((positions.shape[0], 7), dtype=np.float32)
        vertex_data[:, :3] = positions
        normals = smooth_normals(positions, self._faces, self._incidence)
        lighting = self._lighting if lighting is None else lighting
        if pose is not None:
            lighting = lighting.turned(np.asarray(pose)[:3, :3])
        vertex_data[:, 3:] = shade_vertices(normals, self._albedo if albedo is None else albedo, lighting)
        return vertex_data

    def _moving_region(self, moving: np.ndarray) -> _MovingRegion | None:
        """The shading shortcut for frames that move only `moving` vertices; None when it saves nothing."""
        touching = moving[self._faces].any(axis=1)  # faces whose normal may change
        region = np.unique(self._faces[touching])  # vertices whose normal or position may change
        if region.size > 0.8 * moving.size:
            return None
        local = np.full(moving.size, -1, dtype=np.int64)
        local[region] = np.arange(region.size)
        region_faces = local[self._faces[touching]]
        still_faces = self._faces[~touching]
        rest_normals = vertex_normals_operator(still_faces, moving.size) @ _face_normals(self._rest[:, :3], still_faces)
        return _MovingRegion(
            renderer=self, still=np.flatnonzero(~moving), still_neutral=self._neutral[~moving], vertices=region,
            faces=region_faces, incidence=vertex_normals_operator(region_faces, region.size),
            rest_normals=rest_normals[region].astype(np.float32), albedo=self._albedo if self._albedo.ndim == 1 else self._albedo[region],
        )

    def _turned(self, vertices: np.ndarray) -> np.ndarray:
        return vertices if self._view is None else vertices @ self._view.T

    def draw(self, vertex_data: np.ndarray, pose: np.ndarray | None = None, alpha: bool = False) -> np.ndarray:
        """The `(size, size, 3)` RGB image of a vertex buffer from `prepare`, its mesh moved by `pose`
        (the one given to `prepare`); with `alpha`, `(size, size, 4)` RGBX (the fourth byte 255)."""
        if pose is not None or self._pose is not None:
            self._pose = None if pose is None else np.asarray(pose, dtype=np.float64)
            self._scene.set_pose(self._node, np.eye(4) if pose is None else self._pose)
        gl = self._gl
        self._renderer._platform.make_current()
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self._primitive._buffers[0])
        gl.glBufferSubData(gl.GL_ARRAY_BUFFER, 0, vertex_data.nbytes, vertex_data)
        if self._interior is not None or self._backdrop is not None:
            extras = self._extras()
            gl.glBufferSubData(gl.GL_ARRAY_BUFFER, vertex_data.nbytes, extras.nbytes, extras)
        return self._draw(alpha)

    def _extras(self) -> np.ndarray:
        """`(E, 7)` vertex data drawn after the face's: the interior, then the backdrop, in the mesh's frame."""
        parts = [] if self._interior is None else [self._interior]
        if self._backdrop is not None:
            # Collapsed to a point while a plain colour is shown: triangles of no area cost the rasteriser nothing.
            self._backdrop[:, :3] = self._backdrop_positions() if self._backdrop_shown else 0.0
            parts.append(self._backdrop)
        return np.concatenate(parts) if parts else np.empty((0, 7), dtype=np.float32)

    def _backdrop_positions(self) -> np.ndarray:
        """`(rows * cols, 3)` points filling the view just inside the far clip plane, in the mesh's frame."""
        camera = self._scene.main_camera_node.camera
        depth = BACKDROP_DEPTH * camera.zfar
        half = 1.002 * depth * math.tan(camera.yfov / 2)  # a hair beyond the frame's edges
        rows, cols = self._backdrop_grid
        y, x = np.meshgrid(np.linspace(half, -half, rows), np.linspace(-half, half, cols), indexing="ij")
        seen = np.stack([x, y, np.full_like(x, -depth)], axis=-1).reshape(-1, 3)  # camera frame
        to_mesh = self.camera_to_world if self._pose is None else np.linalg.inv(self._pose) @ self.camera_to_world
        return seen @ to_mesh[:3, :3].T + to_mesh[:3, 3]

    def _rebuild(self) -> None:
        """Replace the mesh by one that also holds the extras (`_extras`), and draw it once to upload it."""
        import pyrender

        triangles = [self._faces]
        start = len(self._rest)
        if self._interior is not None:
            count = len(self._interior)
            fan = np.stack([np.zeros(count - 2), np.arange(1, count - 1), np.arange(2, count)], axis=1)
            triangles.append(start + fan.astype(np.int64))
            start += count
        if self._backdrop is not None:
            rows, cols = self._backdrop_grid
            corner = np.arange(rows * cols).reshape(rows, cols)[:-1, :-1].reshape(-1, 1)
            cells = corner + np.array([0, cols, cols + 1, 0, cols + 1, 1])  # two counter-clockwise triangles a cell
            triangles.append(start + cells.reshape(-1, 3))
        data = np.concatenate([self._rest, self._extras()])
        self._scene.remove_node(self._node)
        self._primitive = pyrender.Primitive(
            positions=data[:, :3].copy(), color_0=data[:, 3:].copy(), indices=np.concatenate(triangles).astype(np.uint32),
            material=pyrender.MetallicRoughnessMaterial(baseColorFactor=(1.0, 1.0, 1.0, 1.0)),
        )
        self._node = self._scene.add(pyrender.Mesh([self._primitive]), pose=np.eye(4) if self._pose is None else self._pose)
        self._draw()

    def frame(self, vertices: np.ndarray) -> None:
        """Aim the camera at the bounding box of `(V, 3)` vertices (any points: the part to fill the frame)."""
        pose, distance = camera_pose(vertices)
        node = self._scene.main_camera_node
        node.camera.znear, node.camera.zfar = clip_range(vertices, distance)
        self._scene.set_pose(node, pose)

    @property
    def camera_to_world(self) -> np.ndarray:
        """The `(4, 4)` pose of the camera, which looks down its -z."""
        return self._scene.get_pose(self._scene.main_camera_node)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates `(n, 2)` (x right, y down) of `(n, 3)` points in this renderer's images."""
        return project_points(np.asarray(points, dtype=np.float64), self.camera_to_world, self.size)

    def _draw(self, alpha: bool = False) -> np.ndarray:
        """The frame as `(size, size, 3)` RGB, or `(size, size, 4)` RGBX with `alpha`."""
        # Back faces are culled (about 30% faster on CPU); facing_camera made the winding agree.
        import pyrender

        offscreen = self._renderer
        flags = self._flags | pyrender.RenderFlags.RGBA if alpha else self._flags
        if offscreen._platform.supports_framebuffers():  # EGL
            return offscreen.render(self._scene, flags=flags)[0]
        # OSMesa: pyrender's wrapper would also read back the unused depth buffer (~4 ms at 512²).
        offscreen._platform.make_current()
        offscreen._renderer.render(self._scene, flags)
        if not alpha:
            return offscreen._renderer.read_color_buf()
        gl = self._gl
        gl.glBindFramebuffer(gl.GL_READ_FRAMEBUFFER, 0)
        gl.glReadBuffer(gl.GL_FRONT)
        pixels = gl.glReadPixels(0, 0, self.size, self.size, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE)
        return np.frombuffer(pixels, dtype=np.uint8).reshape(self.size, self.size, 4)[::-1]

    def close(self) -> None:
        """Free the GL context (also done by the garbage collector)."""
        if self._renderer is not None:
            # OffscreenRenderer.delete() without its closing gc.collect(), which costs 0.3-0.8 s once
            # torch is loaded and frees nothing of ours: the same three steps.
            offscreen, self._renderer = self._renderer, None
            offscreen._platform.make_current()
            offscreen._renderer.delete()
            offscreen._platform.delete_context()
            offscreen._renderer = offscreen._platform = None

    def __enter__(self) -> FaceRenderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
