"""Experimental protocols: grids of training runs summarised over seeds (science.md §4)."""
from .small_data import (
                         GRID_SCHEDULES,
                         SEEDS,
                         SIZES,
                         SmallDataGrid,
                         grid_cells,
                         list_summaries,
                         run_grid,
                         summarise,
)

__all__ = ["GRID_SCHEDULES", "SEEDS", "SIZES", "SmallDataGrid", "grid_cells", "list_summaries", "run_grid",
           "summarise"]
