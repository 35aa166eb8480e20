"""Dataset statistics, plots and frames with their labels drawn, for notebooks and for ``synthfarm report``.

    >>> from synthfarm.addon.core import analytics
    >>> stats = analytics.collect(Path("out/toybox"))
    >>> analytics.plot_classes(stats).savefig("classes.png")
    >>> analytics.view_previews("out/toybox")              # in a notebook: the frames with their labels

``stats`` reads a dataset into rows, ``plots`` draws them (matplotlib Figures, Agg backend), ``overlay``
draws labels on frames, ``report`` writes ``<dataset>/report/index.html``, ``notebook`` holds the functions
named as batch-rendering tools name them.
"""
from .notebook import (summarize_batch_results_as_dataframe, view_previews, visualize_batch_results,
                       visualize_job_params)
from .overlay import ALL_LAYERS, Layers, annotated_frame, preview_grid
from .plots import (plot_box_aspects, plot_box_centres, plot_box_sizes, plot_brightness, plot_classes, plot_depth,
                    plot_distance, plot_draws, plot_objects_per_image, plot_parameter, plot_per_class,
                    plot_truncation, plot_viewpoints, plot_visibility)
from .report import SECTIONS, write_report
from .stats import DatasetStats, collect

__all__ = ["ALL_LAYERS", "DatasetStats", "Layers", "SECTIONS", "annotated_frame", "collect", "plot_box_aspects",
           "plot_box_centres", "plot_box_sizes", "plot_brightness", "plot_classes", "plot_depth", "plot_distance",
           "plot_draws", "plot_objects_per_image", "plot_parameter", "plot_per_class", "plot_truncation",
           "plot_viewpoints", "plot_visibility", "preview_grid", "summarize_batch_results_as_dataframe",
           "view_previews", "visualize_batch_results", "visualize_job_params", "write_report"]
