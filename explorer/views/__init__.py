"""HoloViews figures built from computation results: plain functions, no Panel, no session state.

Every function returns a HoloViews object whose data can be checked without a browser. Images use the
explorer's convention: x to the right, y UP (row 0 of an array is drawn at the top), angles θ in degrees
counter-clockwise from +x. Each module also exports CAPTIONS: one line per figure saying what to look for.
"""

import holoviews as _hv
import holoviews.plotting.bokeh

_hv.Store.set_current_backend("bokeh")
