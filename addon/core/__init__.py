"""Pure-Python core of synthfarm: recipes, sampling, jobs, labels and dataset formats.
Nothing here imports Blender or ZeroMQ."""

__version__ = "0.1.0"
