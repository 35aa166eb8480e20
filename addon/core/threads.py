"""Whether Python threads may run beside Blender's own thread in a process that has bpy.

Not under Python 3.11 (Blender 5.0): an operator called inside ``bpy.context.temp_override`` (the generators' and
the physics drop's) reads the override's dict (BPY_context_member_get) while another Python thread may hold the
interpreter, and 3.11 keeps the current thread state in one global, so it reads it with none: gdb shows
``_PyErr_Fetch(tstate=0x0)`` under ``PyDict_GetItemString``. bpy 5.0.1 segfaulted in 20 runs of 20 with a thread
appending to a file beside primitive adds in a temp_override; bpy 5.3 (Python 3.13, a thread-local state) in none.
In a process that has loaded bpy under 3.11, synthfarm's dataset writes (core/dataset/background.py, the encoders of core/dataset/durable.py) run on
the caller's thread, and the farm's Blender child makes a job durable before it renders the next.
"""
import sys


def threads_beside_bpy() -> bool:
    """False in a process that has loaded bpy under Python 3.11; True anywhere else (the farm's own processes)."""
    return sys.version_info >= (3, 12) or "bpy" not in sys.modules
