"""A plotly renderer for notebooks that must display without a network.

plotly's own "notebook" renderer (plotly 7.1) embeds plotly.js once, but
every figure it draws also loads MathJax from a CDN. `use_offline_renderer`
selects a renderer that embeds plotly.js once and loads nothing, so a
notebook exported to HTML (for feedback, or on a machine without internet
access) draws its figures from the file alone.
"""

from __future__ import annotations

import plotly.io as pio
# NOTE: a private plotly module (plotly 7.1); the renderer classes have no public home.
from plotly.io._base_renderers import NotebookRenderer

OFFLINE_RENDERER = "notebook_offline"


class OfflineNotebookRenderer(NotebookRenderer):
    """plotly's notebook renderer with plotly.js embedded and without MathJax."""

    def to_mimebundle(self, fig_dict):
        html = pio.to_html(
            fig_dict,
            config=self.config,
            include_plotlyjs=False,  # `activate` embedded it once, before the first figure
            include_mathjax=False,
            full_html=False,
            default_width="100%",
            default_height=525,
            validate=False,
        )
        return {"text/html": html}


def use_offline_renderer() -> None:
    """Register the offline renderer and make it plotly's default in this process."""
    pio.renderers[OFFLINE_RENDERER] = OfflineNotebookRenderer()
    pio.renderers.default = OFFLINE_RENDERER
