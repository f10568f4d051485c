"""Offline rendering of face rigs (no GPU, no display): frames, contact sheets, videos."""
from .frame import Camera, default_camera, fit_camera, render_frame, render_mesh
from .output import contact_sheet, image_grid, render_video, save_png

__all__ = ["Camera", "default_camera", "fit_camera", "render_frame", "render_mesh", "contact_sheet", "image_grid",
           "render_video", "save_png"]
